"""Image I/O: bit depth, float data, metadata and alpha survive; bad files fail cleanly.

Files are made (or checked) with independent writers and readers (Pillow, tifffile,
imagecodecs' libpng) wherever one exists, so a bug shared by our reader and writer shows up.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import sys
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import OpenEXR
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

import studio
from studio.core import imageio
from studio.core.errors import BadInputError, UsageError
from studio.core.exif import load_exif
from studio.core.image import Image, ImageMeta
from studio.core.imageio import (
    SUPPORTED_EXTENSIONS,
    encoders,
    is_image_file,
    read_hints,
    read_image,
    read_mask,
    write_image,
)

EXPOSURE, APERTURE, ISO = 1 / 125, 5.6, 400
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _srgb_icc() -> bytes:
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _camera_exif(orientation: int = 1) -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS R5"
    exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = EXPOSURE
    sub[0x829D] = APERTURE
    sub[0x8827] = ISO
    return exif


def _uint(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def _image(pixels: np.ndarray, **meta: object) -> Image:
    return Image(np.ascontiguousarray(pixels, dtype=np.float32), ImageMeta(**meta))  # type: ignore[arg-type]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# --- bit depth and float data -------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_round_trips_bit_exactly(tmp_path, rng, suffix, channels):
    samples = _uint(rng, (37, 53, channels), np.uint16)
    source = tmp_path / f"in{suffix}"
    flat = samples[..., 0] if channels == 1 else samples
    if suffix == ".png":
        source.write_bytes(imagecodecs.png_encode(flat))
    else:
        extra = ("unassalpha",) if channels in (2, 4) else None
        tifffile.imwrite(source, flat, photometric="rgb" if channels >= 3 else "minisblack",
                         extrasamples=extra)  # fmt: skip

    image = read_image(source)
    assert image.meta.bit_depth == 16
    assert image.channels == (3 if channels >= 3 else 1)
    assert (image.alpha is not None) == (channels in (2, 4))
    out = write_image(image, tmp_path / f"out{suffix}")

    written = imagecodecs.png_decode(out.read_bytes()) if suffix == ".png" else tifffile.imread(out)
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written.reshape(samples.shape), samples)


def test_tiff_alpha_is_the_first_extra_sample_and_later_ones_are_ignored(tmp_path, rng):
    samples = _uint(rng, (5, 7, 5), np.uint16)
    extra = ("unassalpha", "unspecified")
    tifffile.imwrite(tmp_path / "x.tif", samples, photometric="rgb", extrasamples=extra)
    image = read_image(tmp_path / "x.tif")
    np.testing.assert_allclose(image.pixels, samples[..., :3] / 65535, atol=1e-7)
    assert image.alpha is not None
    np.testing.assert_allclose(image.alpha, samples[..., 3] / 65535, atol=1e-7)


@pytest.mark.parametrize("suffix", [".tif", ".exr"])
def test_float_round_trips_exactly(tmp_path, rng, suffix):
    radiance = (rng.standard_normal((31, 45, 3)) * 50).astype(np.float32)  # negatives, > 1
    alpha = rng.random((31, 45), dtype=np.float32)
    out = write_image(Image(radiance, ImageMeta(bit_depth=32), alpha), tmp_path / f"hdr{suffix}")
    back = read_image(out)
    assert back.meta.bit_depth == 32
    np.testing.assert_array_equal(back.pixels, radiance)
    np.testing.assert_array_equal(back.alpha, alpha)
    if suffix == ".tif":
        np.testing.assert_array_equal(tifffile.imread(out)[..., :3], radiance)


def test_half_float_exr_within_half_precision(tmp_path, rng):
    radiance = rng.uniform(0.01, 100.0, (16, 24, 3)).astype(np.float32)
    out = write_image(_image(radiance, bit_depth=32), tmp_path / "half.exr", bit_depth=16)
    with OpenEXR.File(str(out), separate_channels=True) as exr:
        assert exr.channels()["R"].pixels.dtype == np.float16
    np.testing.assert_allclose(read_image(out).pixels, radiance, rtol=2**-11)


def test_radiance_hdr_round_trips_within_rgbe_precision(tmp_path, rng):
    radiance = np.exp(rng.uniform(-7, 7, (29, 41, 3))).astype(np.float32)
    back = read_image(write_image(_image(radiance, bit_depth=32), tmp_path / "scene.hdr"))
    assert back.meta.bit_depth == 32
    # RGBE shares one exponent per pixel: 8 mantissa bits relative to the largest component.
    tolerance = radiance.max(axis=2, keepdims=True) * 2**-7
    assert np.all(np.abs(back.pixels - radiance) <= tolerance)


def test_grey_float_exr_and_tiff_stay_grey(tmp_path, rng):
    grey = rng.random((12, 14, 1), dtype=np.float32) * 4
    for suffix in (".exr", ".tif"):
        back = read_image(write_image(_image(grey, bit_depth=32), tmp_path / f"grey{suffix}"))
        assert back.channels == 1
        np.testing.assert_array_equal(back.pixels, grey)


@pytest.mark.parametrize(
    ("source_depth", "suffix", "expected"),
    [(16, ".jpg", 8), (16, ".webp", 8), (32, ".png", 16), (8, ".png", 8), (16, ".tif", 16),
     (32, ".tif", 32), (8, ".exr", 32), (16, ".hdr", 32)],
)  # fmt: skip
def test_default_bit_depth_follows_the_source(tmp_path, rng, source_depth, suffix, expected):
    pixels = rng.random((8, 10, 3), dtype=np.float32)
    back = read_image(write_image(_image(pixels, bit_depth=source_depth), tmp_path / f"x{suffix}"))
    assert back.meta.bit_depth == expected


def test_integer_output_is_clipped_and_rounded(tmp_path):
    values = np.array([[-1.0, 0.0, 0.4 / 255, 0.6 / 255, 0.5, 1.0, 7.0, np.nan]], np.float32)
    out = write_image(_image(values[..., None]), tmp_path / "ramp.png", bit_depth=8)
    written = imagecodecs.png_decode(out.read_bytes())
    np.testing.assert_array_equal(written.ravel(), [0, 0, 0, 1, 128, 255, 255, 0])


def test_impossible_bit_depth_and_unknown_suffix_are_usage_errors(tmp_path):
    image = _image(np.zeros((4, 4, 3)))
    with pytest.raises(UsageError, match="JPEG stores 8-bit"):
        write_image(image, tmp_path / "x.jpg", bit_depth=16)
    with pytest.raises(UsageError, match="use one of"):
        write_image(image, tmp_path / "x.bmp")
    assert list(tmp_path.iterdir()) == []


# --- colour modes ---------------------------------------------------------------------------


def test_grey_and_grey_alpha_pngs(tmp_path, rng):
    grey = _uint(rng, (9, 11), np.uint8)
    PILImage.fromarray(grey).save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.channels == 1 and image.alpha is None and image.meta.bit_depth == 8
    np.testing.assert_array_equal(np.rint(image.pixels[..., 0] * 255), grey)

    pair = _uint(rng, (9, 11, 2), np.uint8)
    PILImage.fromarray(pair, "LA").save(tmp_path / "la.png")
    image = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(np.rint(image.alpha * 255), pair[..., 1])


def test_palette_png_becomes_rgb_with_alpha(tmp_path, rng):
    picture = PILImage.fromarray(_uint(rng, (9, 11, 3), np.uint8)).convert("P")
    picture.save(tmp_path / "p.png", transparency=0)
    expected = np.asarray(picture.convert("RGBA"))
    image = read_image(tmp_path / "p.png")
    assert image.channels == 3
    np.testing.assert_array_equal(np.rint(image.pixels * 255), expected[..., :3])
    np.testing.assert_array_equal(np.rint(image.alpha * 255), expected[..., 3])


def test_cmyk_jpeg_becomes_rgb(tmp_path, rng):
    picture = PILImage.fromarray(_uint(rng, (16, 16, 4), np.uint8), "CMYK")
    picture.save(tmp_path / "cmyk.jpg", quality=100)
    with PILImage.open(tmp_path / "cmyk.jpg") as reference:
        expected = np.asarray(reference.convert("RGB"))
    image = read_image(tmp_path / "cmyk.jpg")
    assert image.channels == 3 and image.meta.icc_profile is None
    np.testing.assert_array_equal(np.rint(image.pixels * 255), expected)


def test_rgba_webp_keeps_alpha(tmp_path, rng):
    pixels = rng.random((10, 12, 3), dtype=np.float32)
    alpha = np.round(rng.random((10, 12), dtype=np.float32) * 255) / 255
    out = write_image(Image(pixels, ImageMeta(), alpha), tmp_path / "a.webp", quality=100)
    back = read_image(out)
    np.testing.assert_array_equal(back.alpha, alpha)
    np.testing.assert_allclose(back.pixels, np.round(pixels * 255) / 255, atol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_on_read_and_reset_on_write(tmp_path, rng, orientation, caplog):
    stored = _uint(rng, (6, 10, 3), np.uint8)
    picture = PILImage.fromarray(stored)
    picture.save(tmp_path / "o.png", exif=_camera_exif(orientation))
    with PILImage.open(tmp_path / "o.png") as reference:
        upright = np.asarray(ImageOps.exif_transpose(reference))

    with caplog.at_level(logging.WARNING):
        image = read_image(tmp_path / "o.png")
    assert not caplog.records  # well-formed EXIF: nothing to tell the photographer
    np.testing.assert_array_equal(np.rint(image.pixels * 255), upright)
    out = write_image(image, tmp_path / "upright.png")
    with PILImage.open(out) as written:
        assert written.getexif().get(0x0112) == 1
        np.testing.assert_array_equal(np.asarray(written), upright)


@pytest.mark.parametrize("orientation", [0, 9, 300])
def test_an_invalid_exif_orientation_reads_the_picture_as_stored(tmp_path, rng, orientation):
    stored = _uint(rng, (6, 10, 3), np.uint8)
    PILImage.fromarray(stored).save(tmp_path / "o.png", exif=_camera_exif(orientation))
    image = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(np.rint(image.pixels * 255), stored)


def test_a_palette_tiff_maps_every_index_to_its_own_colour(tmp_path, rng):
    """The first and last entries too; a 16-bit colour map stays 16-bit."""
    colours = rng.integers(1, 65535, (3, 256), dtype=np.uint16) | 1  # neither v*257 nor v<<8
    indices = np.array([[0, 1, 254, 255], [255, 0, 7, 254]], np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", indices, photometric="palette", colormap=colours)
    image = read_image(tmp_path / "p.tif")
    assert image.meta.bit_depth == 16
    expected = np.moveaxis(colours[:, indices], 0, -1) / 65535
    np.testing.assert_allclose(image.pixels, expected, atol=1e-7)


def test_tiff_colour_spaces(tmp_path, rng):
    grey = _uint(rng, (6, 8), np.uint16)
    tifffile.imwrite(tmp_path / "white.tif", grey, photometric="miniswhite")
    np.testing.assert_array_equal(
        np.rint(read_image(tmp_path / "white.tif").pixels[..., 0] * 65535), 65535 - grey
    )

    palette = PILImage.fromarray(_uint(rng, (6, 8, 3), np.uint8)).convert("P")
    palette.save(tmp_path / "palette.tif")
    image = read_image(tmp_path / "palette.tif")
    assert image.meta.bit_depth == 8
    np.testing.assert_array_equal(np.rint(image.pixels * 255), np.asarray(palette.convert("RGB")))

    ink = rng.choice([0, 255], size=(6, 8, 4)).astype(np.uint8)  # pure inks: formulas agree
    tifffile.imwrite(tmp_path / "cmyk.tif", ink, photometric="separated")
    expected = (255 - ink[..., :3]) * (ink[..., 3:] == 0)
    np.testing.assert_array_equal(np.rint(read_image(tmp_path / "cmyk.tif").pixels * 255), expected)


def test_premultiplied_tiff_alpha_is_undone(tmp_path, rng):
    colour = rng.random((6, 8, 3), dtype=np.float32)
    alpha = rng.uniform(0.2, 1.0, (6, 8)).astype(np.float32)
    stored = np.concatenate([colour * alpha[..., None], alpha[..., None]], axis=2)
    tifffile.imwrite(tmp_path / "pm.tif", stored, photometric="rgb", extrasamples=("assocalpha",))
    image = read_image(tmp_path / "pm.tif")
    np.testing.assert_allclose(image.pixels, colour, rtol=1e-5)
    np.testing.assert_array_equal(image.alpha, alpha)


# --- metadata -------------------------------------------------------------------------------


def test_exposure_aperture_and_iso_are_parsed(tmp_path, rng):
    PILImage.fromarray(_uint(rng, (8, 8, 3), np.uint8)).save(
        tmp_path / "shot.jpg", exif=_camera_exif()
    )
    meta = read_image(tmp_path / "shot.jpg").meta
    assert meta.exposure_time == pytest.approx(EXPOSURE)
    assert meta.f_number == pytest.approx(APERTURE)
    assert meta.iso == pytest.approx(ISO)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_exif_icc_and_xmp_survive_a_run(tmp_path, rng, suffix):
    icc = _srgb_icc()
    PILImage.fromarray(_uint(rng, (24, 32, 3), np.uint8)).save(
        tmp_path / "camera.jpg", exif=_camera_exif(), icc_profile=icc, xmp=XMP, quality=95
    )
    image = read_image(tmp_path / "camera.jpg")
    processed = image.with_pixels(image.pixels * 0.5, step="denoise (gaussian, sigma=1.5)")
    out = write_image(processed, tmp_path / f"result{suffix}")

    with PILImage.open(out) as written:
        assert written.info["icc_profile"] == icc
        exif = written.getexif()
        assert exif[0x010F] == "Canon" and exif[0x0110] == "EOS R5"
        assert exif[0x0131] == f"Studio {studio.__version__}: denoise (gaussian, sigma=1.5)"
        assert 0x010E not in exif  # the steps go to Software, not into the description
        sub = exif.get_ifd(0x8769)
        assert float(sub[0x829A]) == pytest.approx(EXPOSURE)
        assert float(sub[0x829D]) == pytest.approx(APERTURE)
        assert sub[0x8827] == ISO
    back = read_image(out).meta
    assert back.xmp is not None and XMP in back.xmp
    assert (back.exposure_time, back.f_number, back.iso) == pytest.approx((EXPOSURE, APERTURE, ISO))


def test_tiff_exif_is_readable_by_tifffile(tmp_path, rng):
    image = _image(rng.random((8, 8, 3)), bit_depth=16, exif=_camera_exif().tobytes())
    out = write_image(image.with_pixels(image.pixels, step="deblur"), tmp_path / "x.tif")
    with tifffile.TiffFile(out) as tif:
        tags = tif.pages.first.tags
        assert tags["Make"].value == "Canon"
        assert "ImageDescription" not in tags
        assert tags["Software"].value == f"Studio {studio.__version__}: deblur"
        exif = tags["ExifTag"].value
    assert exif["ExposureTime"] == pytest.approx(EXPOSURE)
    assert exif["FNumber"] == pytest.approx(APERTURE)


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_description_is_kept_and_history_goes_to_software(tmp_path, suffix):
    exif = _camera_exif()
    exif[0x010E] = "Harbour at dawn"
    image = _image(np.zeros((4, 4, 3)), exif=exif.tobytes(), history=("denoise", "deblur"))
    out = write_image(image, tmp_path / f"x{suffix}")
    with PILImage.open(out) as written:
        assert written.getexif()[0x010E] == "Harbour at dawn"
        assert written.getexif()[0x0131] == f"Studio {studio.__version__}: denoise; deblur"


def test_a_tiff_s_own_icc_profile_is_read_and_a_cielab_tiff_gets_srgb(tmp_path, rng):
    """A profile written by tifffile (not Studio); Lab pixels become sRGB, tagged as such."""
    profile = _srgb_icc()[:-4] + b"mine"  # a profile of its own, byte for byte
    pixels = _uint(rng, (4, 5, 3), np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", pixels, photometric="rgb", iccprofile=profile)
    assert read_image(tmp_path / "p.tif").meta.icc_profile == profile
    lab = np.zeros((4, 5, 3), np.uint8)
    tifffile.imwrite(tmp_path / "lab.tif", lab, photometric=8)
    tagged = read_image(tmp_path / "lab.tif").meta.icc_profile
    assert tagged is not None  # LittleCMS stamps a profile's creation time: compare its name
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(tagged)))
    assert "sRGB" in description


def test_icc_profile_for_another_colour_space_is_dropped(tmp_path):
    srgb = _srgb_icc()
    grey_profile = srgb[:16] + b"GRAY" + srgb[20:]
    out = write_image(_image(np.zeros((4, 4, 3)), icc_profile=grey_profile), tmp_path / "x.png")
    assert read_image(out).meta.icc_profile is None


def test_oversized_jpeg_exif_drops_the_maker_note(tmp_path):
    exif = _camera_exif()
    exif.get_ifd(0x8769)[0x927C] = b"\x00" * 70_000
    out = write_image(_image(np.zeros((4, 4, 3)), exif=exif.tobytes()), tmp_path / "x.jpg")
    meta = read_image(out).meta
    assert meta.exposure_time == pytest.approx(EXPOSURE)
    assert 0x927C not in load_exif(meta.exif).get_ifd(0x8769)


def test_exr_keeps_exposure_and_history(tmp_path, rng):
    meta = ImageMeta(bit_depth=32, exposure_time=0.25, f_number=8.0, iso=100.0, history=("hdr",))
    out = write_image(Image(rng.random((6, 6, 3), dtype=np.float32), meta), tmp_path / "x.exr")
    back = read_image(out).meta
    assert (back.exposure_time, back.f_number, back.iso) == pytest.approx((0.25, 8.0, 100.0))
    with OpenEXR.File(str(out), header_only=True) as exr:
        assert exr.header()["comments"] == f"Studio {studio.__version__}: hdr"


def test_xmp_orientation_is_reset_with_the_exif_one(tmp_path, rng):
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    PILImage.fromarray(_uint(rng, (4, 6, 3), np.uint8)).save(
        tmp_path / "turned.jpg", exif=_camera_exif(6), xmp=xmp
    )
    image = read_image(tmp_path / "turned.jpg")
    assert (image.width, image.height) == (4, 6)
    assert image.meta.xmp == xmp.replace(b'"6"', b'"1"')


def test_webp_side_limit_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="at most 16383 pixels"):
        write_image(_image(np.zeros((2, 16384, 3))), tmp_path / "wide.webp")
    assert list(tmp_path.iterdir()) == []


# --- bad input ------------------------------------------------------------------------------


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _jpeg_claiming(tmp_path: Path, size: int) -> bytes:
    PILImage.new("RGB", (8, 8)).save(tmp_path / "small.jpg")
    data = bytearray((tmp_path / "small.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", size, size)
    return bytes(data)


def _tiff_claiming(tmp_path: Path, size: int) -> bytes:
    tifffile.imwrite(tmp_path / "small.tif", np.zeros((8, 8), np.uint8))
    data = bytearray((tmp_path / "small.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "small.tif") as tif:
        for name in ("ImageWidth", "ImageLength"):
            tag = tif.pages.first.tags[name]
            fmt = "<H" if tag.dtype == 3 else "<I"
            data[tag.valueoffset : tag.valueoffset + struct.calcsize(fmt)] = struct.pack(fmt, size)
    return bytes(data)


@pytest.mark.parametrize("kind", ["png", "jpg", "tif", "hdr"])
def test_decompression_bomb_is_refused_from_the_header(tmp_path, kind):
    bombs = {
        "png": lambda: _png_header_only(100_000, 100_000),
        "jpg": lambda: _jpeg_claiming(tmp_path, 60_000),
        "tif": lambda: _tiff_claiming(tmp_path, 60_000),
        "hdr": lambda: b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 60000 +X 60000\n\x02\x02",
    }
    path = tmp_path / f"bomb.{kind}"
    path.write_bytes(bombs[kind]())
    with pytest.raises(BadInputError, match=r"60000x60000|100000x100000") as error:
        read_image(path)
    assert "megapixels" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp", ".hdr", ".exr"])
def test_pixel_limit_is_configurable(tmp_path, rng, suffix, monkeypatch):
    path = write_image(_image(rng.random((10, 20, 3))), tmp_path / f"x{suffix}")
    with pytest.raises(BadInputError, match="over the limit"):
        read_image(path, max_pixels=199)
    assert read_image(path, max_pixels=200).width == 20
    monkeypatch.setenv("STUDIO_MAX_PIXELS", "100")
    with pytest.raises(BadInputError, match="over the limit"):
        read_image(path)


def _truncated(tmp_path: Path, suffix: str) -> Path:
    image = _image(np.random.default_rng(1).random((40, 40, 3)), bit_depth=16)
    whole = write_image(image, tmp_path / f"whole{suffix}").read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _file(folder: Path, name: str, data: bytes) -> Path:
    (folder / name).write_bytes(data)
    return folder / name


UNREADABLE = {
    "empty": lambda d: _file(d, "empty.jpg", b""),
    "garbage": lambda d: _file(d, "garbage.png", np.random.default_rng(2).bytes(300)),
    "text": lambda d: _file(d, "notes.jpg", b"hello\nworld\n"),
    "missing": lambda d: d / "missing.png",
    "folder": lambda d: d,
    **{f"truncated{s}": lambda d, s=s: _truncated(d, s) for s in imageio.WRITABLE_EXTENSIONS},
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_files_give_a_one_line_bad_input_error(tmp_path, case):
    path = UNREADABLE[case](tmp_path)
    with pytest.raises(BadInputError) as error:
        read_image(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    assert error.value.exit_code == 3


def test_content_decides_the_format_not_the_suffix(tmp_path, rng):
    samples = _uint(rng, (7, 9, 3), np.uint16)
    (tmp_path / "actually_png.jpg").write_bytes(imagecodecs.png_encode(samples))
    image = read_image(tmp_path / "actually_png.jpg")
    assert image.meta.source_format == "png" and image.meta.bit_depth == 16
    np.testing.assert_array_equal(np.rint(image.pixels * 65535), samples)


def test_raw_without_rawpy_names_the_fix(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "IMG_0001.dng", np.zeros((8, 8), np.uint16))
    monkeypatch.setitem(sys.modules, "rawpy", None)
    with pytest.raises(BadInputError, match=r"pip install rawpy"):
        read_image(tmp_path / "IMG_0001.dng")


# --- writing safely ---------------------------------------------------------------------------


def _failing_writer(error: BaseException):
    def write(output, path: Path) -> None:
        path.write_bytes(b"half a picture")
        raise error

    return write


@pytest.mark.parametrize("error", [RuntimeError("encoder crashed"), OSError(28, "No space")])
def test_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch, error):
    monkeypatch.setitem(encoders.ENCODERS, "png", _failing_writer(error))
    with pytest.raises((RuntimeError, BadInputError)):
        write_image(_image(np.zeros((4, 4, 3))), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous result")
    monkeypatch.setitem(encoders.ENCODERS, "png", _failing_writer(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_image(_image(np.zeros((4, 4, 3))), target)
    assert target.read_bytes() == b"previous result"
    assert _leftovers(tmp_path) == []


def test_write_error_is_a_bad_input_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setitem(encoders.ENCODERS, "png", _failing_writer(OSError(28, "No space left")))
    with pytest.raises(BadInputError, match=r"Cannot write .*out\.png: No space left"):
        write_image(_image(np.zeros((4, 4, 3))), tmp_path / "out.png")


def test_refuses_to_overwrite_an_input(tmp_path, rng):
    source = tmp_path / "photo.png"
    source.write_bytes(imagecodecs.png_encode(_uint(rng, (8, 8, 3), np.uint8)))
    original = source.read_bytes()
    image = read_image(source)
    fresh = Image(image.pixels, ImageMeta())  # no source_path: only `inputs` protects it
    with pytest.raises(BadInputError, match="Refusing to overwrite"):
        write_image(fresh, source, inputs=[source])
    with pytest.raises(BadInputError, match="Refusing to overwrite"):
        write_image(image, tmp_path / "sub" / ".." / "photo.png")  # its own source
    (tmp_path / "link.png").hardlink_to(source)
    with pytest.raises(BadInputError, match="Refusing to overwrite"):
        write_image(fresh, tmp_path / "link.png", inputs=[str(source)])
    assert source.read_bytes() == original
    assert _leftovers(tmp_path) == []


def test_written_file_gets_ordinary_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    out = write_image(_image(np.zeros((4, 4, 3))), tmp_path / "new" / "x.png")
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# --- masks, hints, file discovery ---------------------------------------------------------------


def test_mask_white_is_one_and_size_must_match(tmp_path, rng):
    grey = _uint(rng, (80, 100), np.uint8)
    PILImage.fromarray(grey).save(tmp_path / "mask.png")
    mask = read_mask(tmp_path / "mask.png", (80, 100))
    assert mask.shape == (80, 100) and mask.dtype == np.float32
    np.testing.assert_allclose(mask, grey / 255, atol=1e-6)
    with pytest.raises(BadInputError, match="Mask is 100x80 but the image is 120x90"):
        read_mask(tmp_path / "mask.png", (90, 120))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_mask_holding_only_0_and_1_is_read_as_black_and_white(tmp_path, dtype, caplog):
    marks = np.zeros((5, 6), dtype)
    marks[1:3, 2:5] = 1  # a boolean array saved as an image
    source = tmp_path / "bool.png"
    source.write_bytes(imagecodecs.png_encode(marks))
    with caplog.at_level(logging.WARNING):
        mask = read_mask(source, (5, 6))
    np.testing.assert_array_equal(mask, marks.astype(np.float32))
    assert "bool.png holds only the values 0 and 1: read as black and white" in caplog.text


def _window_mean(values: np.ndarray, y: int, x: int) -> np.ndarray:
    """The mean of the finite samples among the 8 neighbours of (y, x), per channel."""
    window = values[y - 1 : y + 2, x - 1 : x + 2].reshape(9, -1)
    window = np.delete(window, 4, axis=0)  # the pixel itself
    return np.nanmean(np.where(np.isfinite(window), window, np.nan), axis=0)


def test_non_finite_float_samples_are_filled_with_the_mean_of_their_finite_neighbours(
    tmp_path, rng, caplog
):
    radiance = rng.random((8, 9, 3), dtype=np.float32) * 4
    broken = radiance.copy()
    broken[3, 4, 1] = np.nan
    broken[5, 2] = np.inf  # side by side: each fills from its finite neighbours only
    broken[5, 3, 0] = -np.inf
    tifffile.imwrite(tmp_path / "hdr.tif", broken, photometric="rgb")
    before = broken.astype(np.float64)
    expected = before.copy()
    expected[3, 4, 1] = _window_mean(before, 3, 4)[1]
    expected[5, 2] = _window_mean(before, 5, 2)
    expected[5, 3, 0] = _window_mean(before, 5, 3)[0]
    with caplog.at_level(logging.WARNING):
        image = read_image(tmp_path / "hdr.tif")
    np.testing.assert_allclose(image.pixels, expected, rtol=1e-6)
    assert "hdr.tif: 3 pixels with NaN or infinite values repaired" in caplog.text
    broken[5, 2] = broken[5, 3] = radiance[5, 2]
    tifffile.imwrite(tmp_path / "one.tif", broken, photometric="rgb")
    with caplog.at_level(logging.WARNING):
        read_image(tmp_path / "one.tif")
    assert "one.tif: 1 pixel with NaN or infinite values repaired" in caplog.text


def test_rgba_mask_counts_transparent_as_unmasked(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2, :, :] = 255  # opaque white strokes on the top half
    rgba[2:, :, :3] = 255  # transparent white below
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "strokes.png")
    mask = read_mask(tmp_path / "strokes.png", (4, 4))
    np.testing.assert_array_equal(mask, np.repeat([[1.0], [1.0], [0.0], [0.0]], 4, axis=1))


def test_hints_are_rgba_with_opaque_hints(tmp_path, rng):
    rgba = _uint(rng, (6, 7, 4), np.uint8)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "hints.png")
    hints = read_hints(tmp_path / "hints.png", (6, 7))
    assert hints.shape == (6, 7, 4)
    np.testing.assert_allclose(hints, rgba / 255, atol=1e-6)
    with pytest.raises(BadInputError, match="Hints image is 7x6 but the image is 8x6"):
        read_hints(tmp_path / "hints.png", (6, 8))


def test_image_files_are_recognised_by_suffix(tmp_path):
    assert {
        ".jpg",
        ".jpeg",
        ".png",
        ".tif",
        ".tiff",
        ".webp",
        ".hdr",
        ".exr",
    } <= SUPPORTED_EXTENSIONS
    assert all(suffix == suffix.lower() for suffix in SUPPORTED_EXTENSIONS)
    for name in ("a.JPG", "b.exr", ".hidden.png", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = sorted(p.name for p in tmp_path.iterdir() if is_image_file(p))
    assert found == ["a.JPG", "b.exr"]
    assert not is_image_file(tmp_path / "missing.png")
