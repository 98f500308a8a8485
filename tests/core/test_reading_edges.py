"""What `read_image` promises a photographer at its edges, each found by a surviving mutant
(python -m benchmarks.mutants --module reading): clear refusals, kept depth and metadata."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile

from studio.core import exif as exiflib
from studio.core.errors import BadInputError
from studio.core.imageio import decoders, read_hints, read_image, read_mask
from studio.core.imageio.decoded import Decoded


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null on this system")
def test_a_device_is_refused_as_not_a_regular_file(tmp_path):
    """A device or pipe is refused before it is opened (reading a pipe can block forever)."""
    link = tmp_path / "photo.jpg"
    link.symlink_to("/dev/null")
    with pytest.raises(BadInputError, match=r"photo\.jpg: not a regular file"):
        read_image(link)


def test_a_folder_is_refused_as_a_folder(tmp_path):
    album = tmp_path / "album.png"
    album.mkdir()
    with pytest.raises(BadInputError, match=r"album\.png: it is a folder, not a file"):
        read_image(Path(album))


@pytest.mark.parametrize("error", [ValueError("-2"), OSError("0"), SyntaxError("")])
def test_a_decoder_error_without_words_is_told_as_a_damaged_file(tmp_path, monkeypatch, error):
    """A decoder's reason is shown when it is words; a bare code such as '-2' is not one."""
    (tmp_path / "odd.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))

    def fail(path: Path, limit: int) -> None:
        raise error

    monkeypatch.setitem(decoders.DECODERS, "png", fail)
    with pytest.raises(BadInputError) as refused:
        read_image(tmp_path / "odd.png")
    assert str(refused.value) == (
        f"Cannot read {tmp_path / 'odd.png'}: the PNG file is damaged or stored in a way "
        "Studio cannot decode"
    )


def test_a_file_of_no_known_kind_is_told_as_not_an_image(tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping list: film, batteries\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"notes\.jpg: not a supported image file$"):
        read_image(notes)


def test_a_png_named_like_a_raw_file_is_read_as_the_png_it_is(tmp_path):
    """The content decides; a RAW suffix only sends a TIFF-like or unknown file to LibRaw."""
    pixels = np.random.default_rng(3).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    misnamed = tmp_path / "DSC_0001.nef"
    misnamed.write_bytes(imagecodecs.png_encode(pixels))
    image = read_image(misnamed)
    assert image.meta.source_format == "png" and image.meta.bit_depth == 16
    np.testing.assert_array_equal(np.rint(image.pixels * 65535), pixels)


def test_unknown_content_named_like_a_raw_file_is_told_as_a_damaged_raw(tmp_path):
    """LibRaw gets the last word on a file with a RAW suffix whose content is no other format."""
    broken = tmp_path / "DSC_0002.nef"
    broken.write_bytes(b"\x00\x01garbage" * 64)
    with pytest.raises(BadInputError, match=r"DSC_0002\.nef: the RAW file is damaged"):
        read_image(broken)


def test_samples_of_a_type_studio_does_not_scale_are_refused_clearly(tmp_path, monkeypatch):
    """A decoder handing over, say, 32-bit integers (no known white level) is refused by name
    rather than read with a guessed scale."""
    (tmp_path / "deep.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))

    def int32_samples(path: Path, limit: int) -> Decoded:
        return Decoded(np.full((2, 3, 3), 7, np.int32), 32)

    monkeypatch.setitem(decoders.DECODERS, "png", int32_samples)
    with pytest.raises(BadInputError, match=r"deep\.png: unsupported sample format int32"):
        read_image(tmp_path / "deep.png")


@pytest.mark.parametrize("channels", [1, 3])
def test_a_single_pixel_photo_is_read(tmp_path, channels):
    """One sample is a picture; only a file with none is refused as having no pixels."""
    pixel = np.array([[[40, 90, 200][:channels]]], np.uint8)
    path = tmp_path / "dot.png"
    path.write_bytes(imagecodecs.png_encode(pixel if channels == 3 else pixel[..., 0]))
    image = read_image(path)
    assert image.pixels.shape == (1, 1, channels)
    np.testing.assert_allclose(image.pixels[0, 0] * 255, pixel[0, 0], atol=1e-3)


def test_a_hole_of_nan_wider_than_a_pixel_fills_from_its_edge_inwards(tmp_path):
    """A 5x5 hole in a flat radiance map: its centre has no finite neighbour at first, and
    is filled once the ring around it is; the photo ends finite and flat."""
    radiance = np.full((11, 12, 3), 2.5, np.float32)
    radiance[3:8, 4:9] = np.nan
    tifffile.imwrite(tmp_path / "hole.tif", radiance, photometric="rgb")
    image = read_image(tmp_path / "hole.tif")
    np.testing.assert_allclose(image.pixels, 2.5, rtol=1e-6)


def test_a_float_photo_with_no_finite_sample_is_refused(tmp_path):
    tifffile.imwrite(
        tmp_path / "void.tif", np.full((4, 5, 3), np.nan, np.float32), photometric="rgb"
    )
    with pytest.raises(BadInputError, match=r"void\.tif: no pixel of the image is a finite"):
        read_image(tmp_path / "void.tif")


def test_an_all_black_mask_is_read_without_a_notice(tmp_path, caplog):
    """Only a mask whose top level is 1 is a boolean array saved as an image."""
    (tmp_path / "none.png").write_bytes(imagecodecs.png_encode(np.zeros((5, 6), np.uint8)))
    with caplog.at_level(logging.WARNING):
        mask = read_mask(tmp_path / "none.png", (5, 6))
    assert not caplog.records and not mask.any()


def test_a_tiff_whose_exif_pillow_cannot_parse_is_read_without_it(tmp_path, monkeypatch, caplog):
    """The picture matters more than its EXIF: it is read, and the photographer told."""
    pixels = np.random.default_rng(2).integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", pixels, photometric="rgb")

    def malformed(stream: object) -> None:
        raise SyntaxError("not a TIFF file (header b'\\x00\\x00' not valid)")

    monkeypatch.setattr(exiflib, "read_tiff_exif", malformed)
    with caplog.at_level(logging.WARNING):
        image = read_image(tmp_path / "scan.tif")
    assert "scan.tif: its EXIF metadata is unreadable; reading the picture without it" in (
        caplog.text
    )
    assert image.meta.exif is None and image.meta.bit_depth == 16
    np.testing.assert_array_equal(np.rint(image.pixels * 65535), pixels)


@pytest.mark.parametrize("stored_as", [257, 256])  # v * 257 (tifffile, libtiff) or v << 8
def test_an_8_bit_palette_tiff_reads_as_8_bit(tmp_path, stored_as):
    """A palette of 8-bit colours stays 8-bit (a 16-bit result would double the output)."""
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, (3, 256), dtype=np.uint16)
    indices = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "scan.tif", indices, photometric="palette",
                     colormap=palette * stored_as)  # fmt: skip
    image = read_image(tmp_path / "scan.tif")
    assert image.meta.bit_depth == 8
    expected = np.moveaxis(palette[:, indices], 0, -1)
    np.testing.assert_array_equal(np.rint(image.pixels * 255), expected)


def test_transparent_pixels_of_a_premultiplied_tiff_read_black_and_finite(tmp_path):
    """Premultiplied colour at alpha 0 carries no colour: black, even where a careless
    writer left some (dividing it by a tiny alpha would give values in the billions)."""
    stored = np.zeros((3, 4, 4), np.uint8)
    stored[0] = (100, 50, 25, 200)  # opaque enough: unpremultiplied
    stored[1, :2] = (0, 0, 0, 0)  # transparent
    stored[1, 2:] = (10, 20, 30, 0)  # transparent, with stray colour
    stored[2] = (255, 255, 255, 255)
    tifffile.imwrite(tmp_path / "pm.tif", stored, photometric="rgb", extrasamples=("assocalpha",))
    image = read_image(tmp_path / "pm.tif")
    assert image.alpha is not None
    np.testing.assert_array_equal(image.alpha[1], 0.0)
    np.testing.assert_array_equal(image.pixels[1], 0.0)
    np.testing.assert_allclose(image.pixels[0] * 200, np.tile([100, 50, 25], (4, 1)), rtol=1e-5)
    np.testing.assert_allclose(image.pixels[2], 1.0, rtol=1e-6)


def _reference_fill(values: np.ndarray) -> np.ndarray:
    """Non-finite samples filled round by round, each by the mean of its finite neighbours
    among the 8 around it (edge pixels repeated beyond the edge) as they were before the
    round; a plain loop, written independently of Studio's vectorised one."""
    filled = values.astype(np.float64)
    height, width = filled.shape[:2]
    while not np.isfinite(filled).all():
        before = filled.copy()
        for y, x, c in np.argwhere(~np.isfinite(before)):
            near = [before[min(max(y + dy, 0), height - 1), min(max(x + dx, 0), width - 1), c]
                    for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]  # fmt: skip
            finite = [v for v in near if np.isfinite(v)]
            if finite:
                filled[y, x, c] = sum(finite) / len(finite)
    return filled


def test_non_finite_samples_are_filled_as_an_independent_reference_fills_them(tmp_path):
    rng = np.random.default_rng(11)
    radiance = (rng.random((9, 10, 3)) * 8).astype(np.float32)
    broken = radiance.copy()
    broken[rng.random(broken.shape) < 0.3] = np.nan  # scattered: some have 1 finite neighbour
    broken[2:7, 3:8, 0] = np.inf  # and a hole whose middle waits for its ring
    broken[0, :4, 1] = -np.inf  # at the edge
    tifffile.imwrite(tmp_path / "hdr.tif", broken, photometric="rgb")
    image = read_image(tmp_path / "hdr.tif")
    np.testing.assert_allclose(image.pixels, _reference_fill(broken), rtol=1e-5)


def test_a_float_premultiplied_tiff_is_undone_however_faint_its_alpha(tmp_path):
    """Colour over alpha for every alpha above 0, down to the faintest a float file holds."""
    alpha = np.array([[1.0, 0.5, 1.2e-12, 1e-30]], np.float32)
    colour = np.array([[0.2, 0.4, 0.6, 0.8]], np.float32)
    stored = np.dstack([colour * alpha] * 3 + [alpha])
    tifffile.imwrite(tmp_path / "glow.tif", stored, photometric="rgb", extrasamples=("assocalpha",))
    image = read_image(tmp_path / "glow.tif")
    np.testing.assert_allclose(image.pixels[..., 1], colour, rtol=1e-5)


def test_two_repaired_pixels_are_told_in_the_plural(tmp_path, caplog):
    radiance = np.full((4, 5, 3), 0.5, np.float32)
    radiance[1, 1, 0] = radiance[2, 3, 2] = np.nan
    tifffile.imwrite(tmp_path / "two.tif", radiance, photometric="rgb")
    with caplog.at_level(logging.WARNING):
        read_image(tmp_path / "two.tif")
    assert "two.tif: 2 pixels with NaN or infinite values repaired" in caplog.text


def test_float_masks_and_hints_above_1_are_read_as_1(tmp_path):
    """A float file may hold 3.0 where it means 'fully': a mask or hint is at most 1."""
    bright = np.full((4, 5, 3), 0.25, np.float32)
    bright[0] = 3.0
    tifffile.imwrite(tmp_path / "bright.tif", bright, photometric="rgb")
    mask = read_mask(tmp_path / "bright.tif", (4, 5))
    hints = read_hints(tmp_path / "bright.tif", (4, 5))
    np.testing.assert_array_equal(mask[0], 1.0)
    np.testing.assert_array_equal(hints[0], 1.0)
    np.testing.assert_allclose(mask[1:], 0.25)
    np.testing.assert_allclose(hints[1:, :, :3], 0.25)


def test_a_mask_holding_0_and_2_is_a_faint_mask_not_black_and_white(tmp_path, caplog):
    marks = np.zeros((5, 6), np.uint8)
    marks[1:3, 2:5] = 2
    (tmp_path / "faint.png").write_bytes(imagecodecs.png_encode(marks))
    with caplog.at_level(logging.WARNING):
        mask = read_mask(tmp_path / "faint.png", (5, 6))
    np.testing.assert_allclose(mask, marks / 255, atol=1e-7)
    assert "black and white" not in caplog.text


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32])
def test_a_min_is_white_tiff_reads_as_the_negative_of_min_is_black(tmp_path, dtype):
    """The same samples stored white-is-zero read as the inverse of black-is-zero: reflected
    about 0 for signed integers, about the top of the range otherwise."""
    rng = np.random.default_rng(12)
    if dtype is np.float32:
        samples = rng.random((4, 5), dtype=np.float32)
    else:
        info = np.iinfo(dtype)
        samples = rng.integers(info.min + 1, info.max, (4, 5), endpoint=True).astype(dtype)
    tifffile.imwrite(tmp_path / "black.tif", samples, photometric="minisblack")
    tifffile.imwrite(tmp_path / "white.tif", samples, photometric="miniswhite")
    black = read_image(tmp_path / "black.tif").pixels
    white = read_image(tmp_path / "white.tif").pixels
    inverse = -black if dtype is np.int16 else 1.0 - black
    np.testing.assert_allclose(white, inverse, atol=1e-6)
