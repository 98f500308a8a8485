"""Wrong options and settings are usage errors (exit 2, one line), found before any computing:
name templates, exposure times, tile sizes, STUDIO_MAX_PIXELS, over-long output names and
outputs too large for their format. And an overwritten output keeps its permission mode.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from studio.cli.main import main
from tests.reliability.helpers import error_line


def _photo(path: Path, size: tuple[int, int] = (12, 16), seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(path)
    return path


def _json_events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _progress(text: str) -> list[dict[str, object]]:
    return [event for event in _json_events(text) if event["event"] == "progress"]


@pytest.mark.parametrize(
    "template",
    [
        "{stem!r:>99999999}",  # issue 16: 200 MB on stderr and a 400 MB journal
        "{stem:>300}",
        "{stem!s}",
        "{stem.__class__}",
        "{stem[0]}",
        "{}",
        "x" * 101,
    ],
)
def test_a_name_template_beyond_the_documented_fields_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str
) -> None:
    photo = _photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    argv = ["batch", "denoise", str(photo), "-o", str(out), "--engine", "gaussian"]
    assert main([*argv, "--name", template]) == 2
    captured = capsys.readouterr()
    assert len(captured.err) < 400 and not captured.out
    error_line(captured.err)
    assert not out.exists()


def test_a_long_recipe_name_is_refused_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """60 steps make a 479-byte `{task}`: refused at once, not after 60 denoise passes."""
    photo = _photo(tmp_path / "photo.png")
    recipe = tmp_path / "long.json"
    recipe.write_text(json.dumps([{"task": "denoise", "engine": "gaussian"}] * 60))
    out = tmp_path / "out"
    argv = ["batch", "--recipe", str(recipe), str(photo), "-o", str(out), "--json"]

    assert main(argv) == 2

    captured = capsys.readouterr()
    assert "choose a shorter name" in error_line(captured.err)
    assert not any(event["event"] == "started" for event in _json_events(captured.out))


def test_an_over_long_output_name_is_refused_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _photo(tmp_path / "photo.png")
    out = tmp_path / f"{'n' * 300}.png"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--engine", "gaussian", "--json"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "304 bytes long" in error_line(captured.err)
    assert not _progress(captured.out), "it computed before refusing"


@pytest.mark.parametrize("fmt", ["webp", "jpg"])
def test_an_output_too_large_for_its_format_is_refused_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """WebP stores 16383 and JPEG 65535 pixels a side: a 70000x1 picture fits neither."""
    photo = _photo(tmp_path / "strip.png", size=(1, 70_000))
    out = tmp_path / f"strip.{fmt}"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--engine", "gaussian", "--json"]
    assert main([*argv, "--param", "radius=1"]) == 2
    captured = capsys.readouterr()
    assert "choose PNG or TIFF" in error_line(captured.err)
    assert not _progress(captured.out), "it computed before refusing"
    assert not out.exists()


def test_a_batch_item_too_large_for_its_format_fails_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    _photo(shoot / "a.png")
    _photo(shoot / "b.png", size=(1, 17_000))
    out = tmp_path / "out"
    argv = ["batch", "denoise", str(shoot), "-o", str(out), "--format", "webp", "--json"]
    assert main([*argv, "--engine", "gaussian", "--param", "radius=1"]) == 2
    events = _json_events(capsys.readouterr().out)
    failed = [e for e in events if e["event"] == "failed"]
    assert [Path(str(e["input"])).name for e in failed] == ["b.png"]
    assert failed[0]["exit_code"] == 2 and "at most 16383" in str(failed[0]["reason"])
    progressed = {e.get("index") for e in events if e["event"] == "progress"}
    assert failed[0]["index"] not in progressed, "it computed before refusing"
    assert (out / "a_denoise.webp").is_file()


def test_a_zero_exposure_time_fraction_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    brackets = [str(_photo(tmp_path / f"b{i}.png", seed=i)) for i in range(3)]
    argv = ["run", "hdr", *brackets, "-o", str(tmp_path / "m.tif"), "--engine", "merge"]
    assert main([*argv, "--param", "times=1/0,1/60,1/15"]) == 2
    assert "'1/0' is not an exposure time" in error_line(capsys.readouterr().err)


@pytest.mark.parametrize("engine", ["nlm", "cbm3d"])
@pytest.mark.parametrize("tile", ["1", "63"])
def test_a_tile_below_the_minimum_is_a_usage_error_that_says_the_minimum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str, tile: str
) -> None:
    photo = _photo(tmp_path / "photo.png")
    argv = ["run", "denoise", str(photo), "-o", str(tmp_path / "o.png"), "--engine", engine]
    assert main([*argv, "--tile", tile]) == 2
    assert "must be at least 64 pixels" in capsys.readouterr().err


def test_the_smallest_tile_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = _photo(tmp_path / "photo.png", size=(70, 150))
    out = tmp_path / "o.png"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--engine", "nlm", "--tile", "64"]
    assert main(argv) == 0, capsys.readouterr().err
    assert out.is_file()


@pytest.mark.parametrize("setting", ["inf", "-inf", "nan", "lots", "0", "-5", "1e400"])
def test_a_bad_studio_max_pixels_is_a_usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
) -> None:
    monkeypatch.setenv("STUDIO_MAX_PIXELS", setting)
    photo = _photo(tmp_path / "photo.png")
    argv = ["run", "denoise", str(photo), "-o", str(tmp_path / "o.png"), "--engine", "gaussian"]
    assert main(argv) == 2
    assert "STUDIO_MAX_PIXELS" in error_line(capsys.readouterr().err)


def test_an_overwritten_output_keeps_its_permission_mode(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    out = tmp_path / "private.png"
    out.write_bytes(b"an older result")
    out.chmod(0o600)
    argv = ["run", "denoise", str(photo), "-o", str(out), "--engine", "gaussian"]
    assert main(argv) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes() != b"an older result"
