"""Downloads against a local HTTP server on 127.0.0.1: resume, verification, atomicity."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.errors import BadInputError, ModelError
from studio.core.paths import models_dir
from studio.engine import models
from studio.engine.models import _download
from studio.engine.models._download import DOWNLOADS_DIR
from tests.engine.models.helpers import FileServer, entry_for, save_tiny_dncnn


@pytest.fixture
def weights(tmp_path: Path) -> bytes:
    return save_tiny_dncnn(tmp_path / "published.pth").read_bytes()


def _offer(
    server: FileServer, catalog_of: Callable[..., None], data: bytes, **fields: object
) -> None:
    """Serve `data` and list it in the catalog (checksum of `data` unless overridden)."""
    server.files["tiny_dncnn.pth"] = data
    catalog_of(entry_for(data, download_url=server.url("tiny_dncnn.pth"), **fields))


def _leftovers() -> list[str]:
    folder = models_dir() / DOWNLOADS_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_installs_and_reports_progress(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    _offer(file_server, catalog_of, weights)
    seen: list[tuple[int, int | None]] = []
    model = models.download("tiny-dncnn", lambda done, total: seen.append((done, total)))
    assert model.catalog_id == "tiny-dncnn" and model.task == "denoise"
    assert model.path.read_bytes() == weights
    assert model.licence == "CC-BY-NC-4.0"
    assert seen[0] == (0, len(weights)) and seen[-1] == (len(weights), len(weights))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert _leftovers() == []
    assert "Range" not in file_server.requests[0]


def test_interrupted_download_resumes_with_a_range_request(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    _offer(file_server, catalog_of, weights)
    half = len(weights) // 2
    file_server.cut_next_after = half
    with pytest.raises(ModelError, match=r"interrupted.*run the same command again") as cut:
        models.download("tiny-dncnn")
    assert "try again to resume" in cut.value.window_text
    partial = models_dir() / DOWNLOADS_DIR / "tiny_dncnn.pth.part"
    assert partial.stat().st_size == half
    assert models.installed_models() == []  # nothing half-written is installed
    assert not (models_dir() / "tiny_dncnn.pth").exists()

    model = models.download("tiny-dncnn")
    assert file_server.requests[-1]["Range"] == f"bytes={half}-"
    assert model.path.read_bytes() == weights
    assert _leftovers() == []


def test_a_server_that_ignores_range_restarts_the_file(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    _offer(file_server, catalog_of, weights)
    file_server.cut_next_after = 1000
    with pytest.raises(ModelError, match="interrupted"):
        models.download("tiny-dncnn")
    file_server.ranges = False
    assert models.download("tiny-dncnn").path.read_bytes() == weights


def test_checksum_mismatch_is_refused_and_leaves_nothing(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    _offer(file_server, catalog_of, weights, sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ModelError, match="sha256 differs"):
        models.download("tiny-dncnn")
    assert _leftovers() == []
    assert models.installed_models() == []
    assert [p.name for p in models_dir().iterdir()] == [DOWNLOADS_DIR]


def test_a_resumed_download_from_a_changed_file_is_caught_by_the_checksum(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    _offer(file_server, catalog_of, weights)
    file_server.cut_next_after = len(weights) // 3
    with pytest.raises(ModelError, match="interrupted"):
        models.download("tiny-dncnn")
    file_server.files["tiny_dncnn.pth"] = bytes(reversed(weights))  # the server's copy changed
    with pytest.raises(ModelError, match="sha256 differs"):
        models.download("tiny-dncnn")
    assert _leftovers() == []
    file_server.files["tiny_dncnn.pth"] = weights
    assert models.download("tiny-dncnn").path.read_bytes() == weights
    assert "Range" not in file_server.requests[-1]  # started afresh


def test_md5_is_used_where_it_is_all_the_catalog_has(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    md5 = hashlib.md5(weights).hexdigest()
    _offer(file_server, catalog_of, weights, sha256="unknown", md5=md5)
    assert models.download("tiny-dncnn").sha256 == hashlib.sha256(weights).hexdigest()
    models.remove("tiny-dncnn")
    _offer(file_server, catalog_of, weights, sha256="unknown", md5="0" * 32)
    with pytest.raises(ModelError, match="md5 differs"):
        models.download("tiny-dncnn")


def test_without_a_checksum_nothing_is_fetched_unless_allowed(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    _offer(file_server, catalog_of, weights, sha256="unknown")
    with pytest.raises(ModelError, match="--allow-unverified") as refused:
        models.download("tiny-dncnn")
    assert file_server.requests == []
    assert "--" not in refused.value.window_text and "(Import model…)" in refused.value.window_text
    model = models.download("tiny-dncnn", allow_unverified=True)
    assert model.path.read_bytes() == weights


def test_fetch_only_downloads_into_a_folder(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes, tmp_path: Path
) -> None:
    _offer(file_server, catalog_of, weights)
    path = models.fetch("tiny-dncnn", tmp_path / "bundle")
    assert path == tmp_path / "bundle" / "tiny_dncnn.pth" and path.read_bytes() == weights
    assert models.installed_models() == []
    requests = len(file_server.requests)
    assert models.fetch("tiny-dncnn", tmp_path / "bundle") == path  # verified copy reused
    assert len(file_server.requests) == requests


def test_url_override_and_refusals(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    file_server.files["mirror/copy.pth"] = weights
    catalog_of(entry_for(weights))
    with pytest.raises(ModelError, match="No download address"):
        models.download("tiny-dncnn")
    model = models.download("tiny-dncnn", url_override=file_server.url("mirror/copy.pth"))
    assert model.path.read_bytes() == weights
    with pytest.raises(BadInputError, match="not in the model catalog"):
        models.download("no-such-model")
    with pytest.raises(BadInputError, match="http"):
        models.download("tiny-dncnn", url_override="file:///etc/passwd")
    with pytest.raises(ModelError, match="HTTP 404"):
        models.download("tiny-dncnn", url_override=file_server.url("missing.pth"))


def test_companions_are_fetched_with_their_model_and_not_alone(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes, tmp_path: Path
) -> None:
    encoder = b"encoder weights"
    file_server.files["tiny_dncnn.pth"] = weights
    file_server.files["encoder.pth"] = encoder
    catalog_of(
        entry_for(weights, download_url=file_server.url("tiny_dncnn.pth"), companions=["enc"]),
        entry_for(
            encoder, id="enc", file="encoder.pth", download_url=file_server.url("encoder.pth")
        ),
    )
    path = models.fetch("tiny-dncnn", tmp_path / "bundle")
    assert (path.parent / "encoder.pth").read_bytes() == encoder
    assert [r["path"] for r in file_server.requests] == ["/encoder.pth", "/tiny_dncnn.pth"]
    with pytest.raises(BadInputError, match="part of tiny-dncnn"):
        models.fetch("enc", tmp_path / "elsewhere")


def test_an_endless_transfer_stops_at_the_catalog_size_and_keeps_nothing(
    file_server: FileServer,
    catalog_of: Callable[..., None],
    weights: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`studio models download ID --url http://.../endless` (issue 16): no unbounded file."""
    _offer(file_server, catalog_of, weights)
    file_server.endless = True
    seen: list[int] = []
    with pytest.raises(ModelError, match="more than the catalog's size"):
        models.download("tiny-dncnn", lambda done, total: seen.append(done))
    assert max(seen) <= len(weights)
    assert _leftovers() == [] and models.installed_models() == []

    assert (
        main(["models", "download", "tiny-dncnn", "--url", file_server.url("tiny_dncnn.pth")]) == 4
    )
    assert "refused" in capsys.readouterr().err
    assert _leftovers() == []


def test_an_announced_length_over_the_catalog_size_is_refused_before_the_transfer(
    file_server: FileServer, catalog_of: Callable[..., None], weights: bytes
) -> None:
    _offer(file_server, catalog_of, weights)
    file_server.announce = len(weights) + 1
    with pytest.raises(ModelError, match=f"announces {len(weights) + 1} bytes"):
        models.download("tiny-dncnn")
    assert _leftovers() == []


def test_a_model_of_unknown_size_is_bounded_too(
    file_server: FileServer,
    catalog_of: Callable[..., None],
    weights: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_download, "UNKNOWN_SIZE_LIMIT", 3 * len(weights))
    _offer(file_server, catalog_of, weights, size=None)
    file_server.endless = True
    with pytest.raises(ModelError, match="the limit for a model of unknown size"):
        models.download("tiny-dncnn")
    assert _leftovers() == []
    file_server.endless = False  # the same entry, a sound server: the bound is not in the way
    assert models.download("tiny-dncnn").path.read_bytes() == weights
