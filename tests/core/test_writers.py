"""Every writer: extreme shapes, sizes checked before computing, notices for what is lost, and
files their formats' reference readers (tifffile, Pillow, OpenEXR, OpenCV) read back."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import OpenEXR
import pytest
import tifffile
from PIL import Image as PILImage

from studio.core.errors import BadInputError, UsageError
from studio.core.image import Image, ImageMeta
from studio.core.imageio import WRITABLE_EXTENSIONS, check_writable, read_image, write_image

SUFFIXES = sorted(WRITABLE_EXTENSIONS - {".jpe", ".jpeg", ".tiff"})


def _image(shape: tuple[int, ...], depth: int = 8, alpha: bool = False, **meta: object) -> Image:
    rng = np.random.default_rng(6)
    pixels = rng.random(shape, dtype=np.float32)
    mask = rng.random(shape[:2], dtype=np.float32) if alpha else None
    return Image(pixels, ImageMeta(bit_depth=depth, **meta), mask)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    ("height", "width", "channels"), [(1500, 1, 1), (1, 1500, 3), (2000, 1, 3)]
)
def test_every_writer_handles_extreme_aspect_ratios(tmp_path, suffix, height, width, channels):
    image = _image((height, width, channels))
    back = read_image(write_image(image, tmp_path / f"thin{suffix}"))
    assert (back.height, back.width) == (height, width)
    tolerance = 0.2 if suffix in (".jpg", ".webp") else 2e-2  # lossy; RGBE's shared exponent
    assert np.abs(back.pixels.mean() - image.pixels.mean()) < tolerance


def test_png_one_pixel_wide_and_16_bit_is_bit_exact(tmp_path):
    image = _image((3000, 1, 3), depth=16, alpha=True)
    out = write_image(image, tmp_path / "column.png")
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and written.shape == (3000, 1, 4)
    expected = np.rint(image.pixels * 65535).astype(np.uint16)
    np.testing.assert_array_equal(written[..., 2::-1], expected)


@pytest.mark.parametrize(
    ("name", "width", "height", "message"),
    [("wide.webp", 16384, 1, "at most 16383"), ("tall.jpg", 1, 65536, "at most 65535"),
     ("x.bmp", 10, 10, "use one of"), ("empty.png", 0, 10, "no pixels"),
     ("strip.heic", 1, 5000, "HEIC cannot store a strip"),
     ("strip.heic", 4217, 16, "HEIC cannot store a strip")],
)  # fmt: skip
def test_check_writable_refuses_before_any_computing(tmp_path, name, width, height, message):
    with pytest.raises(UsageError, match=message):
        check_writable(tmp_path / name, width, height, 3, np.float32)
    assert list(tmp_path.iterdir()) == []


def test_check_writable_accepts_what_the_writers_write(tmp_path):
    check_writable(tmp_path / "column.png", 1, 100_000, 4, np.uint16)
    check_writable(tmp_path / "new" / "folder" / "wide.webp", 16383, 1)
    check_writable(tmp_path / "x.tif", 10, 10, 1, np.float32, bit_depth=32)
    check_writable(tmp_path / "strip.heic", 4216, 16)
    check_writable(tmp_path / "strip.heic", 32, 33000)
    with pytest.raises(UsageError, match="JPEG stores 8-bit"):
        check_writable(tmp_path / "x.jpg", 10, 10, 3, np.uint16, bit_depth=16)


def test_check_writable_names_a_parent_that_is_a_file(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"photo.jpg is a file, not a folder"):
        check_writable(tmp_path / "photo.jpg" / "out.png", 10, 10)
    (tmp_path / "album.png").mkdir()
    with pytest.raises(BadInputError, match=r"album\.png: it is a folder"):
        check_writable(tmp_path / "album.png", 10, 10)


@pytest.mark.parametrize("quality", [1, 100])
def test_quality_1_and_100_are_the_ends_of_its_range(tmp_path, quality):
    out = write_image(_image((6, 8, 3), 8, False), tmp_path / "q.jpg", quality=quality)
    assert PILImage.open(out).size == (8, 6)


@pytest.mark.parametrize("quality", [0, 101])
def test_quality_outside_1_to_100_is_refused_before_writing(tmp_path, quality):
    with pytest.raises(UsageError, match=f"Quality must be between 1 and 100, not {quality}"):
        write_image(_image((6, 8, 3), 8, False), tmp_path / "q.jpg", quality=quality)
    assert not (tmp_path / "q.jpg").exists()


# --- notices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "alpha", "suffix", "expected"),
    [(16, False, ".jpg", ["8 bits per sample; the 16-bit source"]),
     (32, False, ".png", ["16 bits per sample; the float source"]),
     (32, False, ".webp", ["8 bits per sample; the float source"]),
     (8, True, ".jpg", ["alpha channel is dropped"]),
     (16, True, ".hdr", ["alpha channel is dropped"]),
     (8, True, ".png", []), (16, False, ".tif", []), (32, True, ".exr", [])],
)  # fmt: skip
def test_lost_depth_and_alpha_are_noticed(tmp_path, caplog, depth, alpha, suffix, expected):
    with caplog.at_level(logging.WARNING, logger="studio.core.imageio"):
        write_image(_image((6, 8, 3), depth, alpha), tmp_path / f"out{suffix}")
    notices = [record.getMessage() for record in caplog.records]
    assert len(notices) == len(expected)
    for notice, text in zip(notices, expected, strict=True):
        assert notice.startswith(f"out{suffix}: ") and text in notice


# --- reference readers -------------------------------------------------------------------------


def _tifffile_source(path: Path, samples: np.ndarray) -> Image:
    """A TIFF as tifffile writes it (shape JSON in ImageDescription), read and processed."""
    tifffile.imwrite(path, samples, photometric="rgb")
    assert tifffile.TiffFile(path).pages.first.description.startswith('{"shape"')
    image = read_image(path)
    return image.with_pixels(image.pixels, step="denoise (gaussian, sigma=1.5)")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tifffile_reads_back_a_processed_tifffile_tiff(tmp_path, dtype):
    rng = np.random.default_rng(12)
    samples = rng.random((9, 11, 3)) * (1 if dtype == np.float32 else np.iinfo(dtype).max)
    samples = samples.astype(dtype)
    out = write_image(_tifffile_source(tmp_path / "in.tif", samples), tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(out), samples)
    with tifffile.TiffFile(out) as tif:
        assert "denoise (gaussian" in tif.pages.first.software
        assert not tif.pages.first.description  # the source's layout JSON is not carried


def _expected_8bit(image: Image) -> np.ndarray:
    return np.rint(image.pixels * 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_pillow_reads_back_png_jpeg_and_webp(tmp_path, suffix):
    image = _image((16, 24, 3), history=("deblur",))
    out = write_image(image, tmp_path / f"out{suffix}", quality=100)
    with PILImage.open(out) as written:
        written.load()
        assert written.size == (24, 16) and written.mode == "RGB"
        pixels = np.asarray(written).astype(np.int16)
        assert written.getexif()[0x0131].endswith(": deblur")
    error = np.abs(pixels - _expected_8bit(image))
    assert error.max() <= (0 if suffix != ".jpg" else 12)


def test_opencv_reads_back_png16_and_radiance_hdr(tmp_path):
    image = _image((10, 14, 3), depth=16)
    png = cv2.imread(str(write_image(image, tmp_path / "o.png")), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png[..., ::-1], np.rint(image.pixels * 65535))
    radiance = _image((10, 14, 3), depth=32)
    hdr = cv2.imread(str(write_image(radiance, tmp_path / "o.hdr")), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(hdr[..., ::-1], radiance.pixels, rtol=2**-7, atol=2**-8)


def test_openexr_reads_back_channels_and_history(tmp_path):
    image = _image((10, 14, 3), depth=32, alpha=True, history=("hdr",))
    out = write_image(image, tmp_path / "o.exr")
    with OpenEXR.File(str(out), separate_channels=True) as exr:
        channels = {name: np.asarray(ch.pixels) for name, ch in exr.channels().items()}
        assert exr.header()["comments"].endswith(": hdr")
    rgb = np.stack([channels["R"], channels["G"], channels["B"]], axis=-1)
    np.testing.assert_array_equal(rgb, image.pixels)
    np.testing.assert_array_equal(channels["A"], image.alpha)


@pytest.mark.parametrize(("width", "height"), [(4216, 16), (16, 4216)])
def test_the_thinnest_heic_check_writable_allows_is_written(tmp_path, width, height):
    check_writable(tmp_path / "strip.heic", width, height)
    back = read_image(write_image(_image((height, width, 3)), tmp_path / "strip.heic"))
    assert (back.width, back.height) == (width, height)
