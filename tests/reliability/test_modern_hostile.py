"""Hostile AVIF, HEIC, JPEG XL and camera RAW files from the CLI: refused clearly, never decoded
past their declared size, never a Python object or a second line in the answer."""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
import pillow_heif
import pytest
import tifffile
from PIL import Image as PILImage

from studio.cli.main import main
from studio.core.errors import UsageError
from studio.core.imageio.formats import check_writable
from tests.rawdata import write_bayer_dng
from tests.reliability.helpers import error_line, leftovers

CLAIMED = 30_000  # a side: 900 megapixels, over the default limit of 200
PIXELS = np.random.default_rng(16).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def _with_ispe(data: bytes, width: int, height: int) -> bytes:
    """An AVIF/HEIF whose every 'ispe' (image size) property claims `width` x `height`."""
    patched, at = bytearray(data), data.find(b"ispe")
    assert at > 0
    while at > 0:
        patched[at + 8 : at + 16] = struct.pack(">II", width, height)
        at = data.find(b"ispe", at + 4)
    return bytes(patched)


def _avif_bomb(path: Path) -> None:
    buffer = io.BytesIO()
    PILImage.fromarray(PIXELS).save(buffer, "AVIF")
    path.write_bytes(_with_ispe(buffer.getvalue(), CLAIMED, CLAIMED))


def _heic_bomb(path: Path) -> None:
    buffer = io.BytesIO()
    pillow_heif.from_bytes(mode="RGB", size=(16, 16), data=PIXELS.tobytes()).save(buffer)
    path.write_bytes(_with_ispe(buffer.getvalue(), CLAIMED, CLAIMED))


def _jxl_bomb(path: Path) -> None:
    """A bare JPEG XL codestream whose SizeHeader (ISO/IEC 18181-1) claims CLAIMED x CLAIMED:
    not small (1 bit 0), height by the 30-bit selector, ratio 0, width by the 30-bit selector;
    fields least significant bit first. Nothing valid follows."""
    fields = [(0, 1), (3, 2), (CLAIMED - 1, 30), (0, 3), (3, 2), (CLAIMED - 1, 30)]
    value, at = 0, 0
    for field, bits in fields:
        value, at = value | field << at, at + bits
    path.write_bytes(b"\xff\x0a" + value.to_bytes(16, "little") + bytes(200))


def _dng_bomb(path: Path) -> None:
    """A synthetic Bayer DNG whose ImageWidth and ImageLength claim CLAIMED pixels a side."""
    write_bayer_dng(path, np.full((16, 16, 3), 0.5))
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tiff:
        tags = tiff.pages.first.tags
        for code in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG, stored in place
            size = 2 if tags[code].dtype == 3 else 4
            data[tags[code].valueoffset : tags[code].valueoffset + size] = CLAIMED.to_bytes(
                size, "little"
            )
    path.write_bytes(bytes(data))


BOMBS: dict[str, Callable[[Path], None]] = {
    "bomb.avif": _avif_bomb,
    "bomb.heic": _heic_bomb,
    "bomb.jxl": _jxl_bomb,
    "bomb.dng": _dng_bomb,
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_size_bomb_is_refused_from_its_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    source = tmp_path / name
    BOMBS[name](source)
    out = tmp_path / "out.png"

    assert main(["run", "denoise", str(source), "-o", str(out), "--engine", "gaussian"]) == 3

    line = error_line(capsys.readouterr().err)
    assert f"{CLAIMED}x{CLAIMED}" in line and "megapixels" in line and source.name in line
    assert leftovers(tmp_path, keep=lambda p: p == source) == []


def _avif(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, "AVIF")
    return buffer.getvalue()


@pytest.mark.parametrize("keep", [64, 0.5], ids=["header-only", "half"])
def test_a_truncated_avif_is_called_damaged_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keep: float
) -> None:
    data = _avif(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    source = tmp_path / "cut.avif"
    source.write_bytes(data[: int(keep if keep >= 1 else len(data) * keep)])

    assert main(["run", "denoise", str(source), "-o", str(tmp_path / "out.png")]) == 3

    line = error_line(capsys.readouterr().err)
    assert "damaged" in line and source.name in line
    assert "<" not in line  # no Python object such as <_io.BytesIO object at 0x...>


def _animation(path: Path, levels: tuple[int, ...]) -> None:
    """Flat frames of the given grey levels, as AVIF (Pillow) or JPEG XL (imagecodecs)."""
    frames = np.stack([np.full((16, 24, 3), level, np.uint8) for level in levels])
    if path.suffix == ".jxl":
        path.write_bytes(imagecodecs.jpegxl_encode(frames, photometric="RGB", lossless=True))
        return
    first, *rest = (PILImage.fromarray(frame) for frame in frames)
    first.save(path, save_all=True, append_images=rest, duration=100, quality=100)


@pytest.mark.parametrize(("name", "says"), [("clip.avif", "3 frames"), ("clip.jxl", "animated")])
def test_an_animation_gives_its_first_frame_with_a_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, says: str
) -> None:
    """Both were refused; imagecodecs decoded every frame first (a 54 KB JPEG XL of 50
    2000x2000 frames took 3.0 GB) and corrupts its heap when asked for one AVIF frame."""
    source, out = tmp_path / name, tmp_path / "still.png"
    _animation(source, (200, 30, 90))

    argv = ["run", "denoise", str(source), "-o", str(out), "--engine", "gaussian"]
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "--param", "radius=1"]) == 0

    assert says in caplog.text
    with PILImage.open(out) as result:
        assert np.abs(np.asarray(result, np.float32) - 200).max() <= 2


def test_an_empty_raw_file_is_called_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "IMG_0001.CR3"
    source.write_bytes(b"")

    assert main(["run", "denoise", str(source), "-o", str(tmp_path / "out.png")]) == 3

    assert "the file is empty" in error_line(capsys.readouterr().err)


def _run_to_16bit_png(source: Path, out: Path) -> np.ndarray:
    argv = ["run", "denoise", str(source), "-o", str(out), "--engine", "gaussian"]
    assert main([*argv, "--param", "radius=1", "--bit-depth", "16"]) == 0
    return np.asarray(tifffile.imread(out) if out.suffix == ".tif" else PILImage.open(out))


def test_a_dng_named_tif_is_developed_as_a_raw(tmp_path: Path) -> None:
    scene = np.random.default_rng(5).uniform(0.05, 0.6, (24, 32, 3))  # LibRaw refuses 16 px a side
    dng = write_bayer_dng(tmp_path / "shot.dng", scene)
    renamed = tmp_path / "shot.tif"
    renamed.write_bytes(dng.read_bytes())

    expected = _run_to_16bit_png(dng, tmp_path / "from_dng.tif")
    assert np.array_equal(_run_to_16bit_png(renamed, tmp_path / "from_tif.tif"), expected)


def test_a_plain_tiff_named_dng_is_read_as_a_tiff_with_a_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pixels = np.random.default_rng(6).integers(0, 65536, (16, 24, 3), dtype=np.uint16)
    source = tmp_path / "scan.dng"
    tifffile.imwrite(source, pixels, photometric="rgb")
    tifffile.imwrite(tmp_path / "scan.tif", pixels, photometric="rgb")

    with caplog.at_level(logging.WARNING):
        result = _run_to_16bit_png(source, tmp_path / "out_dng.tif")

    assert "read as an ordinary TIFF" in caplog.text
    assert np.array_equal(result, _run_to_16bit_png(tmp_path / "scan.tif", tmp_path / "out.tif"))


@pytest.mark.parametrize(("suffix", "bits"), [(".avif", 12), (".heic", 10), (".png", 16)])
def test_float_radiance_to_an_integer_format_says_what_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, suffix: str, bits: int
) -> None:
    radiance = np.full((24, 32, 3), 0.5, np.float32)
    radiance[:6] = 3.0  # a quarter of the picture brighter than 1: a sky
    source, out = tmp_path / "merged.tif", tmp_path / f"out{suffix}"
    tifffile.imwrite(source, radiance, photometric="rgb")

    argv = ["run", "denoise", str(source), "-o", str(out), "--engine", "gaussian"]
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "--param", "radius=0.5"]) == 0

    assert f"keeps {bits} bits per sample" in caplog.text
    clipped = [line for line in caplog.text.splitlines() if "are clipped" in line]
    assert len(clipped) == 1 and "EXR" in clipped[0]
    share = float(clipped[0].split("%")[0].rsplit(" ", 1)[1])
    assert 22 <= share <= 28  # the sky's quarter, give or take the blur at its edge


def test_a_truncated_dng_is_refused_in_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """LibRaw prints its own "Unexpected end of file" to the process's stderr: never reached."""
    dng = write_bayer_dng(tmp_path / "full.dng", np.full((24, 32, 3), 0.4))
    source = tmp_path / "cut.dng"
    source.write_bytes(dng.read_bytes()[: dng.stat().st_size - 400])

    assert main(["run", "denoise", str(source), "-o", str(tmp_path / "out.png")]) == 3

    assert "truncated" in error_line(capfd.readouterr().err)


@pytest.mark.parametrize(("suffix", "width"), [(".avif", 32768), (".heic", 65528)])
def test_a_panorama_too_wide_for_the_format_is_refused_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str, width: int
) -> None:
    """libavif opens at most 32768 px a side (a wider AVIF was written, then unreadable) and
    HEVC encodes at most 65528 (a wider HEIC failed in the encoder after computing)."""
    source, out = tmp_path / "panorama.png", tmp_path / f"panorama{suffix}"
    PILImage.fromarray(np.zeros((32, width + 1, 3), np.uint8)).save(source)

    assert main(["run", "denoise", str(source), "-o", str(out), "--engine", "gaussian"]) == 2

    assert str(width) in error_line(capsys.readouterr().err)
    assert not out.exists()


def test_an_avif_over_libavifs_pixel_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="AVIF images can have at most 268 megapixels"):
        check_writable(tmp_path / "big.avif", 16384, 16385)
    check_writable(tmp_path / "big.avif", 16384, 16384)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_a_jpeg_xl_codestream_split_in_parts_reads_like_the_whole(tmp_path: Path) -> None:
    """A container may cut the codestream into 'jxlp' boxes anywhere, even inside the header."""
    pixels = np.random.default_rng(7).integers(0, 65536, (24, 40, 3), dtype=np.uint16)
    whole = bytes(imagecodecs.jpegxl_encode(pixels, usecontainer=True, lossless=True))
    head, codestream = whole.split(b"jxlc", 1)  # the last box imagecodecs writes
    split = head[:-4] + _box(b"jxlp", bytes(4) + codestream[:3])
    split += _box(b"jxlp", struct.pack(">I", 0x80000001) + codestream[3:])  # the last part
    (tmp_path / "whole.jxl").write_bytes(whole)
    (tmp_path / "split.jxl").write_bytes(split)

    expected = _run_to_16bit_png(tmp_path / "whole.jxl", tmp_path / "whole.tif")
    result = _run_to_16bit_png(tmp_path / "split.jxl", tmp_path / "split.tif")
    assert np.array_equal(result, expected)


def test_float_asked_of_avif_is_refused_before_computing_naming_what_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = tmp_path / "merged.tif", tmp_path / "out.avif"
    tifffile.imwrite(source, np.full((8, 8, 3), 2.0, np.float32), photometric="rgb")

    argv = ["run", "denoise", str(source), "-o", str(out), "--bit-depth", "32"]
    assert main(argv) == 2

    line = error_line(capsys.readouterr().err)
    assert "12 bits in the file" in line and "EXR, TIFF or JPEG XL" in line
    assert not out.exists()
