"""`studio models ...` through the real `studio` entry point: output, JSON and exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from studio.cli.main import main
from studio.engine import models
from tests.engine.models.helpers import FileServer, entry_for, save_tiny_dncnn, serve, use_catalog


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    with serve() as server:
        yield server


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = capsys.readouterr().out.strip().splitlines()
    return dict(json.loads(out[-1]))


def test_catalog_listing_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--catalog", "--json"]) == 0
    rows = _json(capsys)["catalog"]
    assert isinstance(rows, list) and len(rows) == len(models.catalog())
    assert {"id", "task", "licence", "commercial_use", "installed"} <= set(rows[0])


def test_import_list_verify_remove_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = save_tiny_dncnn(tmp_path / "good.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"junk")

    assert main(["models", "import", str(good), str(bad)]) == 4
    captured = capsys.readouterr()
    assert "imported" in captured.out and "good.pth" in captured.out
    assert "refused" in captured.err and "bad.pth" in captured.err

    assert main(["models", "list", "--json"]) == 0
    (installed,) = _json(capsys)["models"]  # type: ignore[misc]
    assert installed["task"] == "denoise"

    assert main(["models", "verify"]) == 0
    assert "ok" in capsys.readouterr().out
    Path(models.installed_models()[0].path).write_bytes(b"damaged")
    assert main(["models", "verify", "--json"]) == 4
    (result,) = _json(capsys)["results"]  # type: ignore[misc]
    assert result["ok"] is False

    assert main(["models", "remove", installed["id"]]) == 0
    assert models.installed_models() == []
    assert main(["models", "remove", installed["id"]]) == 3


def test_import_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "import", str(tmp_path / "missing.pth")]) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["models", "import", str(empty)]) == 3
    folder = tmp_path / "folder"
    save_tiny_dncnn(folder / "a.pth")
    assert main(["models", "import", str(folder), "--json"]) == 0
    report = _json(capsys)
    assert len(report["imported"]) == 1 and report["refused"] == []  # type: ignore[arg-type]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 2
    assert main(["models", "frobnicate"]) == 2


def test_download_with_progress_and_to_folder(
    file_server: FileServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    weights = save_tiny_dncnn(tmp_path / "w.pth").read_bytes()
    file_server.files["tiny_dncnn.pth"] = weights
    use_catalog(monkeypatch, entry_for(weights, download_url=file_server.url("tiny_dncnn.pth")))

    assert main(["models", "download", "tiny-dncnn", "--to", str(tmp_path / "bundle")]) == 0
    assert (tmp_path / "bundle" / "tiny_dncnn.pth").read_bytes() == weights
    assert models.installed_models() == []

    assert main(["models", "download", "tiny-dncnn"]) == 0
    captured = capsys.readouterr()
    assert "installed tiny-dncnn" in captured.out
    assert "NOT for commercial use" in captured.out
    assert "B/s" in captured.err or "100%" in captured.err  # the byte progress bar

    other = entry_for(b"other", size=len(weights), download_url=file_server.url("tiny_dncnn.pth"))
    use_catalog(monkeypatch, other)
    models.remove("tiny-dncnn")
    assert main(["models", "download", "tiny-dncnn", "--json"]) == 4
    assert "sha256 differs" in capsys.readouterr().err


def test_run_by_path_installed_id_and_catalog_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.core.image import Image
    from studio.core.imageio import read_image, write_image

    checkpoint = save_tiny_dncnn(tmp_path / "mine.pth")
    use_catalog(monkeypatch, entry_for(checkpoint.read_bytes()))
    photo = tmp_path / "photo.png"
    write_image(Image(np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)), photo)

    def run(model: str, name: str) -> Path:
        out = tmp_path / name
        assert main(["run", "denoise", str(photo), "--model", model, "-o", str(out)]) == 0
        return out

    assert main(["run", "denoise", str(photo), "--model", "tiny-dncnn", "-o", "x.png"]) == 3
    by_path = read_image(run(str(checkpoint), "by_path.png")).pixels
    models.import_model(checkpoint)
    by_catalog_id = read_image(run("tiny-dncnn", "by_id.png")).pixels
    np.testing.assert_array_equal(by_path, by_catalog_id)
    assert not np.array_equal(by_path, read_image(photo).pixels)


def test_lama_archives_are_listed_as_loadable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--catalog"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for model_id in ("lama-big", "lama-big-zip"):
        (line,) = [line for line in lines if line[2:].split()[0] == model_id]
        assert " n/a " not in line and " download " in line


def test_recommended_listing_gives_each_task_a_model_or_a_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models", "list", "--catalog", "--recommended", "--json"]) == 0
    rows = {row["task"]: row for row in _json(capsys)["recommended"]}  # type: ignore[union-attr]
    assert rows["inpaint"]["model"]["id"] == "lama-big-zip"
    assert rows["deblur"]["model"] is None and rows["deblur"]["reason"]
    assert main(["models", "list", "--catalog", "--recommended"]) == 0
    text = capsys.readouterr().out
    assert "Apache-2.0" in text and "none qualifies" in text
    assert main(["models", "list", "--recommended"]) == 2


def test_download_recommended_fetches_each_tasks_choice(
    file_server: FileServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = save_tiny_dncnn(tmp_path / "tiny.pth").read_bytes()
    file_server.files["tiny_dncnn.pth"] = data
    chosen = entry_for(
        data,
        licence="MIT",
        commercial_use=True,
        recommended=True,
        download_url=file_server.url("tiny_dncnn.pth"),
    )
    other = entry_for(data, id="other", sha256="0" * 64, download_url=file_server.url("x.pth"))
    use_catalog(monkeypatch, chosen, other)
    assert main(["models", "download", "--recommended", "--task", "inpaint"]) == 0
    assert models.installed_models() == []  # inpaint has no recommended model here
    assert main(["models", "download", "--recommended", "--json"]) == 0
    assert _json(capsys)["recommended"] == [
        {"id": "tiny-dncnn", "task": "denoise", "installed": True}
    ]
    assert [m.catalog_id for m in models.installed_models()] == ["tiny-dncnn"]
    assert main(["models", "download", "--recommended", "tiny-dncnn"]) == 2
    bundle = tmp_path / "bundle"
    assert main(["models", "download", "--recommended", "--to", str(bundle)]) == 0
    assert (bundle / "tiny_dncnn.pth").read_bytes() == data
