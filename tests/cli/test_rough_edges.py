"""Rough edges of issue 16, each a clear message or notice where there was silence: masks that
select nothing or everything, a mask no step uses, a truncated output under --resume, and
third-party warnings on stderr.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from studio.cli.main import main
from tests.reliability.helpers import error_line, read_png, studio_process

SIZE = (24, 32)


def _photo(path: Path, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(path)
    return path


def _mask(path: Path, samples: np.ndarray) -> Path:
    PILImage.fromarray(samples).save(path)
    return path


def _square(value: int | tuple[int, ...], channels: int | None = None) -> np.ndarray:
    shape = SIZE if channels is None else (*SIZE, channels)
    samples = np.zeros(shape, np.uint8)
    samples[8:16, 10:20] = value
    return samples


def _inpaint(photo: Path, mask: Path, out: Path) -> list[str]:
    return ["run", "inpaint", str(photo), "-o", str(out), "--mask", str(mask), "--engine", "telea"]


@pytest.mark.parametrize(
    ("samples", "says"),
    [
        (np.zeros(SIZE, np.uint8), "selects nothing"),
        (np.full(SIZE, 255, np.uint8), "selects the whole picture"),
        (_square(40), "selects nothing"),  # a faint grey mark: under half, not a selection
    ],
    ids=["black", "white", "faint"],
)
def test_a_mask_selecting_nothing_or_everything_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], samples: np.ndarray, says: str
) -> None:
    photo = _photo(tmp_path / "photo.png")
    mask = _mask(tmp_path / "mask.png", samples)
    out = tmp_path / "out.png"
    assert main(_inpaint(photo, mask, out)) == 3
    line = error_line(capsys.readouterr().err)
    assert says in line and str(mask) in line
    assert not out.exists()


def test_a_black_region_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = _photo(tmp_path / "photo.png")
    region = _mask(tmp_path / "region.png", np.zeros(SIZE, np.uint8))
    out = tmp_path / "out.png"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--region", str(region)]
    assert main([*argv, "--engine", "gaussian"]) == 3
    assert "selects nothing" in error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "samples",
    [_square(1), _square((255, 0, 0), 3), _square((0, 0, 255), 3)],
    ids=["values-0-and-1", "pure-red", "pure-blue"],
)
def test_a_0_1_or_coloured_mask_selects_like_a_white_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, samples: np.ndarray
) -> None:
    photo = _photo(tmp_path / "photo.png")
    white = _mask(tmp_path / "white.png", _square(255))
    odd = _mask(tmp_path / "odd.png", samples)
    assert main(_inpaint(photo, white, tmp_path / "white_out.png")) == 0
    assert main(_inpaint(photo, odd, tmp_path / "odd_out.png")) == 0
    expected = read_png(tmp_path / "white_out.png")
    np.testing.assert_array_equal(read_png(tmp_path / "odd_out.png"), expected)
    assert not np.array_equal(expected, read_png(photo)), "the white mask changed nothing"
    if samples.max() == 1:
        assert "only the values 0 and 1: read as black and white" in caplog.text


def test_a_mask_the_task_ignores_gets_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _photo(tmp_path / "photo.png")
    mask = _mask(tmp_path / "mask.png", _square(255))
    out = tmp_path / "out.png"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--mask", str(mask)]
    assert main([*argv, "--engine", "gaussian"]) == 0
    err = capsys.readouterr().err
    assert f"Ignoring the mask {mask}: denoise/gaussian does not use one" in err
    batch = ["batch", "denoise", str(photo), "-o", str(tmp_path / "b"), "--mask", str(mask)]
    assert main([*batch, "--engine", "gaussian"]) == 0
    assert "Ignoring the mask" in capsys.readouterr().err


def test_resume_redoes_a_truncated_output_and_keeps_a_sound_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for seed, name in enumerate("ab"):
        _photo(shoot / f"{name}.png", seed)
    out = tmp_path / "out"
    argv = ["batch", "denoise", str(shoot), "-o", str(out), "--engine", "gaussian", "--json"]
    assert main(argv) == 0
    truncated, sound = out / "a_denoise.png", out / "b_denoise.png"
    whole = truncated.read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    capsys.readouterr()

    assert main([*argv, "--resume"]) == 0

    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_input = {Path(e["input"]).name: e["event"] for e in events if "input" in e}
    assert by_input == {"a.png": "finished", "b.png": "skipped"}
    assert truncated.read_bytes() == whole and sound.is_file()


def _tiff_with_a_bad_next_page(path: Path) -> Path:
    """A sound one-page TIFF whose pointer to a next page points past the end (tifffile warns)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((*SIZE, 3), np.uint8), photometric="rgb")
    data = bytearray(buffer.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    entries = struct.unpack("<H", data[first : first + 2])[0]
    following = first + 2 + 12 * entries
    data[following : following + 4] = struct.pack("<I", 0x7FFF0000)
    path.write_bytes(bytes(data))
    return path


def test_third_party_warnings_go_to_the_log_not_the_terminal(tmp_path: Path) -> None:
    photo = _tiff_with_a_bad_next_page(tmp_path / "scan.tif")
    out = tmp_path / "out.png"
    home = tmp_path / "home"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--engine", "gaussian"]

    done = studio_process(argv, env={"STUDIO_HOME": str(home)})

    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "a library wrote to the terminal"
    assert "invalid page offset" in (home / "log" / "studio.log").read_text()
