"""What `write_image` promises a photographer at its edges, each found by a surviving mutant
(python -m benchmarks.mutants --module writing): what is lost is told in true figures, and the
library writes what the command line and the window write by default."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import numpy as np
import pytest

from studio.cli.main import build_parser
from studio.core.errors import BadInputError
from studio.core.image import Image, ImageMeta
from studio.core.imageio import read_image, write_image
from studio.core.imageio.encoders import ENCODERS
from studio.core.stored import StoredImage


def test_the_share_of_clipped_float_samples_is_told_exactly(tmp_path, caplog):
    """A fifth of a float result's samples above 1, counted over bands of rows (a picture
    taller than wide, in two bands of 218 rows)."""
    samples = np.full((300, 100, 3), 0.5, np.float32)
    samples[:30] = 4.0  # rows at the top, in the first band...
    samples[-30:] = 1.0 + 1e-6  # ...and at the bottom, in the last
    samples[100:130] = 1.0  # white itself is kept, not clipped
    result = StoredImage(samples, ImageMeta(bit_depth=32))
    with caplog.at_level(logging.WARNING):
        write_image(result, tmp_path / "out.png")
    assert "out.png: PNG stores values from 0 to 1; 20.00% of the float result's samples are " \
        "brighter and are clipped" in caplog.text  # fmt: skip


def test_the_default_quality_is_the_command_line_s(tmp_path):
    """`studio run ... -o x.jpg` without --quality and the library's default write the same
    file (a photographer comparing a batch with a CLI export sees no difference)."""
    cli_default = build_parser().parse_args(["run", "denoise", "in.png", "-o", "x.jpg"]).quality
    pixels = np.random.default_rng(5).random((16, 24, 3), dtype=np.float32)
    image = Image(pixels, ImageMeta())
    for suffix in (".jpg", ".webp"):
        by_default = write_image(image, tmp_path / f"default{suffix}").read_bytes()
        chosen = write_image(image, tmp_path / f"cli{suffix}", quality=cli_default).read_bytes()
        assert by_default == chosen


def test_float_files_keep_values_above_one_without_a_clipping_notice(tmp_path, caplog):
    radiance = np.full((4, 6, 3), 0.5, np.float32)
    radiance[0] = 12.0  # a window in a radiance map
    for suffix in (".exr", ".tif"):
        with caplog.at_level(logging.WARNING):
            out = write_image(Image(radiance, ImageMeta(bit_depth=32)), tmp_path / f"r{suffix}")
        assert "clipped" not in caplog.text
        assert read_image(out).pixels.max() == 12.0


@pytest.mark.parametrize(
    ("source", "suffix", "depth", "told"),
    [(32, ".avif", None, "AVIF keeps 12 bits per sample; the float source"),
     (32, ".heic", None, "HEIF keeps 10 bits per sample; the float source"),
     (16, ".heic", 8, "HEIF keeps 8 bits per sample; the 16-bit source"),
     (16, ".avif", 8, "AVIF keeps 8 bits per sample; the 16-bit source")],
)  # fmt: skip
def test_the_bits_a_format_really_stores_are_told(tmp_path, caplog, source, suffix, depth, told):
    """16-bit AVIF holds 12 bits and 16-bit HEIC 10: the notice says what the file keeps."""
    pixels = np.random.default_rng(8).random((40, 40, 3), dtype=np.float32)
    with caplog.at_level(logging.WARNING):
        write_image(Image(pixels, ImageMeta(bit_depth=source)), tmp_path / f"o{suffix}",
                    bit_depth=depth)  # fmt: skip
    assert f"o{suffix}: {told}'s finer levels are rounded away" in caplog.text


def test_a_long_non_ascii_name_within_the_file_system_s_limit_is_written(tmp_path):
    """80 Japanese characters are 244 bytes: a valid name, whose temporary must fit 255 too."""
    name = "写真" * 40 + ".png"
    assert len(name.encode()) == 244
    pixels = np.random.default_rng(9).random((4, 6, 3), dtype=np.float32)
    out = write_image(Image(pixels, ImageMeta()), tmp_path / name)
    assert out.name == name and read_image(out).pixels.shape == (4, 6, 3)
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_a_notice_names_a_long_file_whole_not_its_temporary_s_shorter_name(
    tmp_path, monkeypatch, caplog
):
    """The temporary beside a 244-byte name carries only its first 200 bytes: the notices of
    the JPEG XL and 12-bit AVIF writers named that cut name, without its end or suffix."""
    from PIL import ImageCms

    def layout_unknown(*args: object) -> bytes:
        raise ValueError("unsupported AVIF file layout")

    monkeypatch.setattr("studio.core.imageio.avif_meta.with_metadata", layout_unknown)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pixels = np.random.default_rng(4).random((4, 6, 3), dtype=np.float32)
    photo = Image(pixels, ImageMeta(bit_depth=16, icc_profile=icc))
    for suffix in (".jxl", ".avif"):
        name = "写真" * 40 + suffix
        with caplog.at_level(logging.WARNING):
            write_image(photo, tmp_path / name)
        told = [r.getMessage() for r in caplog.records if "写" in r.getMessage()]
        assert told and all(message.startswith(f"{name}: ") for message in told), told
        caplog.clear()


def test_a_failed_write_whose_temporary_vanished_reports_the_real_cause(tmp_path, monkeypatch):
    """The output folder's disk going away mid-write: the error says why the write failed."""

    def disk_gone(output: object, path: Path) -> None:
        path.unlink()
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setitem(ENCODERS, "png", disk_gone)
    with pytest.raises(BadInputError, match=r"out\.png: Input/output error$"):
        write_image(Image(np.zeros((2, 2, 3), np.float32)), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_a_single_clipped_sample_is_all_of_a_one_pixel_grey_result(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        write_image(Image(np.full((1, 1, 1), 2.0, np.float32), ImageMeta(bit_depth=32)),
                    tmp_path / "dot.png")  # fmt: skip
    assert "100.00% of the float result's samples are brighter" in caplog.text


def test_missing_output_folders_are_made_however_deep(tmp_path):
    """`-o exports/2026/june/x.png` into a fresh folder tree writes the file."""
    target = tmp_path / "exports" / "2026" / "june" / "x.png"
    write_image(Image(np.zeros((2, 3, 3), np.float32)), target)
    assert read_image(target).pixels.shape == (2, 3, 3)
