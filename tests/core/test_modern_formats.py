"""AVIF, JPEG XL, HEIC/HEIF and camera RAW: read, write (RAW: read only), metadata, bit depth.

Every test file is encoded here, by the formats' own libraries (imagecodecs, Pillow,
pillow-heif) or, for RAW, as a synthetic Bayer DNG (tests/rawdata.py) that LibRaw develops.
"""

from __future__ import annotations

import functools
import logging
from io import BytesIO
from pathlib import Path

import imagecodecs
import numpy as np
import pillow_heif
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms

from studio.cli.main import main
from studio.core.errors import UsageError
from studio.core.exif import load_exif
from studio.core.image import Image, ImageMeta
from studio.core.imageio import SUPPORTED_EXTENSIONS, is_image_file, modern, read_image, write_image
from tests.rawdata import write_bayer_dng

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
Y, X = np.mgrid[0:24, 0:32].astype(np.float32)
SMOOTH = np.stack([X / 31, Y / 23, (X + Y) / 54], axis=-1)  # codecs keep smooth pictures well


def _exif() -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15 Pro"
    exif.get_ifd(0x8769)[0x829A] = 1 / 250
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.5)})
    return exif


@functools.cache
def _srgb() -> bytes:
    """One sRGB profile for the whole module: LittleCMS stamps each new one with the time."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _photo(depth: int = 8) -> Image:
    meta = ImageMeta(bit_depth=depth, exif=_exif().tobytes(), icc_profile=_srgb(), xmp=XMP)
    return Image(SMOOTH.copy(), meta)


def test_every_new_suffix_is_recognised(tmp_path):
    for suffix in (".avif", ".jxl", ".heic", ".heif", ".dng", ".nef", ".cr3", ".arw"):
        assert suffix in SUPPORTED_EXTENSIONS
        (tmp_path / f"a{suffix.upper()}").write_bytes(b"x")
        assert is_image_file(tmp_path / f"a{suffix.upper()}")


# --- AVIF ------------------------------------------------------------------------------------


def test_8bit_avif_keeps_pixels_and_metadata_for_pillow(tmp_path):
    out = write_image(_photo(), tmp_path / "web.avif", quality=100)
    with PILImage.open(out) as written:
        pixels = np.asarray(written.convert("RGB"), np.float32) / 255
        assert written.getexif()[0x0110] == "iPhone 15 Pro"
        assert written.info["icc_profile"] == _srgb()
    assert np.abs(pixels - SMOOTH).max() < 3 / 255
    back = read_image(out)
    assert back.meta.bit_depth == 8 and back.meta.xmp == XMP
    assert load_exif(back.meta.exif).get_ifd(0x8825)[1] == "N"


def test_16bit_source_writes_12bit_avif_with_its_metadata(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        out = write_image(_photo(16), tmp_path / "deep.avif", quality=100)
    assert not caplog.text  # nothing left behind
    stored = imagecodecs.avif_decode(out.read_bytes())
    assert stored.dtype == np.uint16 and stored.max() <= 4095
    np.testing.assert_allclose(stored / 4095, SMOOTH, atol=1 / 4095)
    with PILImage.open(out) as written:  # libavif's own reading of the boxes Studio added
        assert written.getexif()[0x0110] == "iPhone 15 Pro"
        assert written.info["icc_profile"] == _srgb() and written.info["xmp"] == XMP
    back = read_image(out)
    assert back.meta.bit_depth == 16 and back.meta.xmp == XMP
    assert load_exif(back.meta.exif).get_ifd(0x8825)[2] == (48.0, 51.0, 29.5)
    np.testing.assert_allclose(back.pixels, SMOOTH, atol=1 / 4095)


def test_12bit_avif_with_alpha_keeps_alpha_and_metadata(tmp_path):
    photo = _photo(16)
    alpha = np.linspace(0, 1, SMOOTH.shape[0] * SMOOTH.shape[1], dtype=np.float32)
    alpha = alpha.reshape(SMOOTH.shape[:2])
    out = write_image(Image(photo.pixels, photo.meta, alpha), tmp_path / "cut.avif", quality=100)
    back = read_image(out)
    assert back.alpha is not None and np.abs(back.alpha - alpha).max() < 1 / 1000
    assert back.meta.icc_profile == _srgb() and back.meta.xmp == XMP
    assert load_exif(back.meta.exif)[0x0110] == "iPhone 15 Pro"


def test_12bit_avif_without_metadata_is_tagged_srgb(tmp_path):
    out = write_image(Image(SMOOTH.copy(), ImageMeta(bit_depth=16)), tmp_path / "bare.avif")
    data = out.read_bytes()
    colour = data[data.find(b"colr") + 4 :][:8]
    assert colour == b"nclx\x00\x01\x00\x0d"  # primaries BT.709, transfer sRGB
    with PILImage.open(out) as written:
        assert "exif" not in written.info and "icc_profile" not in written.info


def test_an_avif_layout_studio_does_not_know_keeps_the_picture_and_says_so(
    tmp_path, monkeypatch, caplog
):
    def unknown(*args: object) -> bytes:
        raise ValueError("unsupported AVIF file layout")

    monkeypatch.setattr("studio.core.imageio.avif_meta.with_metadata", unknown)
    with caplog.at_level(logging.WARNING):
        out = write_image(_photo(16), tmp_path / "deep.avif", quality=100)
    assert "deep.avif: Studio cannot add this EXIF, ICC and XMP to a 12-bit AVIF" in caplog.text
    np.testing.assert_allclose(read_image(out).pixels, SMOOTH, atol=1 / 4095)


def test_metadata_libavif_would_refuse_is_left_out_and_the_picture_kept(tmp_path, caplog):
    """EXIF without a TIFF header makes libavif refuse the whole file ("Invalid Exif
    payload"): the 12-bit AVIF is written without the metadata, and readable."""
    samples = np.rint(SMOOTH * 65535).astype(np.uint16)
    out = tmp_path / "deep.avif"
    with caplog.at_level(logging.WARNING):
        modern.write_avif(out, samples, 100, {"exif": b"Exif\x00\x00not a TIFF header"})
    assert "Studio cannot add this EXIF" in caplog.text
    decoded = imagecodecs.avif_decode(out.read_bytes()).astype(np.float64) / 4095
    np.testing.assert_allclose(decoded, SMOOTH, atol=1 / 4095)


def test_10bit_avif_from_another_encoder_fills_the_16bit_range(tmp_path):
    ten = np.rint(SMOOTH * 1023).astype(np.uint16)
    (tmp_path / "ten.avif").write_bytes(imagecodecs.avif_encode(ten, level=100, bitspersample=10))
    image = read_image(tmp_path / "ten.avif")
    assert image.meta.bit_depth == 16
    np.testing.assert_allclose(image.pixels, ten / 1023, atol=1e-4)


# --- JPEG XL ---------------------------------------------------------------------------------


def _srgb_decode(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


@pytest.mark.parametrize("depth", [8, 16, 32])
def test_lossless_jxl_round_trips_at_every_depth_with_exif_and_xmp(tmp_path, depth):
    photo = _photo(depth)
    if depth == 32:
        photo = photo.with_pixels(photo.pixels * 7.5)  # HDR values above 1 stay
    out = write_image(photo, tmp_path / "x.jxl", quality=100)
    stored = imagecodecs.jpegxl_decode(out.read_bytes())
    if depth == 8:
        np.testing.assert_array_equal(stored, np.rint(photo.pixels * 255))
    elif depth == 16:  # imagecodecs marks 16-bit JPEG XL linear: the samples are linear light
        np.testing.assert_allclose(stored, np.rint(_srgb_decode(photo.pixels) * 65535), atol=1)
    else:
        np.testing.assert_array_equal(stored, photo.pixels)
    data = out.read_bytes()
    at = data.index(b"Exif")  # an ISO BMFF 'Exif' box: 4-byte offset, then the TIFF
    size = int.from_bytes(data[at - 4 : at], "big")
    exif = PILImage.Exif()
    exif.load(data[at + 8 : at - 4 + size])
    assert exif[0x0110] == "iPhone 15 Pro"
    back = read_image(out)
    assert back.meta.bit_depth == depth and back.meta.xmp == XMP
    assert back.meta.exposure_time == pytest.approx(1 / 250)
    # 16-bit goes through linear 16-bit: at most 9.8e-5 off (6 of 65535 levels) over all values.
    error = float(np.abs(back.pixels - photo.pixels).max())
    assert error <= {8: 0.5 / 255, 16: 1e-4, 32: 0.0}[depth] + 1e-7


def test_16bit_jxl_keeps_alpha_unconverted(tmp_path):
    alpha = np.linspace(0, 1, 32 * 24, dtype=np.float32).reshape(24, 32)
    image = Image(SMOOTH.copy(), ImageMeta(bit_depth=16), alpha)
    out = write_image(image, tmp_path / "a.jxl", quality=100)
    np.testing.assert_array_equal(imagecodecs.jpegxl_decode(out.read_bytes())[..., 3],
                                  np.rint(alpha * 65535))  # fmt: skip
    np.testing.assert_allclose(read_image(out).alpha, alpha, atol=0.5 / 65535)


@pytest.mark.parametrize(("bits", "container"), [(10, False), (12, True), (16, False)])
def test_high_bit_linear_jxl_from_another_encoder_reads_as_srgb_16bit(tmp_path, bits, container):
    """imagecodecs writes integer samples above 8 bits as linear light, in the codestream's
    range; Studio stretches them to 16 bits and encodes them with the sRGB curve."""
    top = 2**bits - 1
    samples = np.rint(SMOOTH * top).astype(np.uint16)
    encoded = imagecodecs.jpegxl_encode(
        samples, lossless=True, bitspersample=bits, usecontainer=container
    )
    (tmp_path / "deep.jxl").write_bytes(encoded)
    image = read_image(tmp_path / "deep.jxl")
    assert image.meta.bit_depth == 16
    np.testing.assert_allclose(image.pixels, _srgb_encode(samples / top), atol=1e-5)


def test_bare_jxl_codestream_reads(tmp_path):
    pixels = np.rint(SMOOTH * 255).astype(np.uint8)
    (tmp_path / "bare.jxl").write_bytes(imagecodecs.jpegxl_encode(pixels, lossless=True))
    np.testing.assert_array_equal(np.rint(read_image(tmp_path / "bare.jxl").pixels * 255), pixels)


# --- HEIC ------------------------------------------------------------------------------------


def _phone_heic(path: Path, bits: int) -> np.ndarray:
    mode, dtype, top = ("RGB;16", np.uint16, 65535) if bits > 8 else ("RGB", np.uint8, 255)
    samples = np.rint(SMOOTH * top).astype(dtype)
    heif = pillow_heif.from_bytes(mode=mode, size=(32, 24), data=samples.tobytes())
    heif.save(str(path), quality=95, exif=_exif().tobytes(), icc_profile=_srgb(), chroma=444)
    return SMOOTH


@pytest.mark.parametrize("bits", [8, 10])
def test_phone_heic_reads_with_exif_icc_and_its_depth(tmp_path, bits):
    expected = _phone_heic(tmp_path / "IMG_0001.HEIC", bits)
    image = read_image(tmp_path / "IMG_0001.HEIC")
    assert image.meta.bit_depth == (16 if bits > 8 else 8)
    assert image.meta.icc_profile == _srgb()
    assert load_exif(image.meta.exif)[0x0110] == "iPhone 15 Pro"
    assert np.abs(image.pixels - expected).mean() < 2 / 255


@pytest.mark.parametrize("depth", [8, 16])
def test_heic_output_is_read_by_pillow_heif_with_metadata(tmp_path, depth):
    out = write_image(_photo(depth), tmp_path / "out.heic", quality=95)
    heif = pillow_heif.open_heif(str(out), convert_hdr_to_8bit=False)
    assert heif.info["bit_depth"] == (10 if depth == 16 else 8)
    assert heif.info["icc_profile"] == _srgb()
    exif = PILImage.Exif()
    exif.load(heif.info["exif"])
    assert exif[0x010F] == "Apple"
    assert np.abs(read_image(out).pixels - SMOOTH).mean() < 2 / 255


# --- RAW -------------------------------------------------------------------------------------

SCENE = np.full((64, 96, 3), 0.25)
SCENE[16:48, 24:72] = (0.6, 0.2, 0.1)


def _synthetic_dng(path: Path, orientation: int = 1) -> Path:
    return write_bayer_dng(path, SCENE, orientation=orientation)


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def test_raw_develops_linearly_with_camera_white_balance_and_matrix_to_16bit(tmp_path):
    _synthetic_dng(tmp_path / "shot.dng")
    image = read_image(tmp_path / "shot.dng")
    assert image.meta.bit_depth == 16 and image.meta.source_format == "raw"
    assert image.meta.is_linear_photo  # linear light: no tone curve
    inside = (slice(4, -4), slice(4, -4))  # demosaicing touches the picture's edge
    error = np.abs(image.pixels - SCENE)[inside]
    # Measured: LibRaw gives the scene back to 0.00001 (median) in linear light.
    assert np.median(error) < 1e-3
    assert np.abs(image.pixels[30, 48] - (0.6, 0.2, 0.1)).max() < 1e-3
    assert np.abs(image.pixels[5, 5] - 0.25).max() < 1e-3


def test_raw_exposure_stays_as_shot_near_white(tmp_path):
    """LibRaw by default takes a bright frame's data maximum as its white level (here +0.2
    stops); Studio keeps the camera's, so brackets keep their exposure ratios."""
    bright = np.full((32, 32, 3), 0.85)
    image = read_image(write_bayer_dng(tmp_path / "bright.dng", bright))
    assert np.abs(image.pixels[8:-8, 8:-8] - 0.85).max() < 1e-3


def test_raw_is_written_srgb_encoded_to_integer_files_and_linear_to_float_ones(tmp_path):
    raw = read_image(_synthetic_dng(tmp_path / "shot.dng"))
    png = read_image(write_image(raw, tmp_path / "shot.png"))
    assert png.meta.bit_depth == 16 and not png.meta.is_linear_photo
    assert "sRGB" in ImageCms.getProfileName(
        ImageCms.ImageCmsProfile(BytesIO(png.meta.icc_profile))
    )
    inside = (slice(4, -4), slice(4, -4))
    assert np.median(np.abs(png.pixels - _srgb_encode(SCENE))[inside]) < 1e-3
    exr = read_image(write_image(raw, tmp_path / "shot.exr"))
    np.testing.assert_allclose(exr.pixels, raw.pixels, atol=1e-7)  # linear radiance, float32


def test_raw_carries_exposure_lens_and_orientation(tmp_path):
    _synthetic_dng(tmp_path / "turned.dng", orientation=6)
    image = read_image(tmp_path / "turned.dng")
    assert (image.height, image.width) == (96, 64)  # turned upright by LibRaw
    meta = image.meta
    assert (meta.exposure_time, meta.f_number, meta.iso) == pytest.approx((1 / 125, 5.6, 400))
    exif = load_exif(meta.exif)
    assert exif.get(0x0112, 1) == 1 and exif[0x010F] == "Studio"
    assert exif.get_ifd(0x8769)[0xA434] == "Synthetic 50mm f/1.8"


def test_raw_capture_data_comes_from_libraw_when_the_exif_cannot_be_read(
    tmp_path, monkeypatch, caplog
):
    """As for CR3 or RAF files, which are not TIFF-structured."""
    _synthetic_dng(tmp_path / "shot.dng")

    def unreadable(stream: object) -> None:
        raise ValueError("not a TIFF")

    monkeypatch.setattr("studio.core.exif.read_tiff_exif", unreadable)
    with caplog.at_level(logging.WARNING):
        meta = read_image(tmp_path / "shot.dng").meta
    assert "shot.dng: its EXIF metadata is unreadable; LibRaw's is used" in caplog.text
    assert (meta.exposure_time, meta.f_number) == pytest.approx((1 / 125, 5.6))
    assert load_exif(meta.exif).get_ifd(0x8769)[0xA434] == "Synthetic 50mm f/1.8"


def test_cli_denoises_a_raw_into_a_16bit_tiff_with_the_camera_exif(tmp_path):
    _synthetic_dng(tmp_path / "DSC_0001.dng")
    out = tmp_path / "clean.tif"
    args = ["run", "denoise", str(tmp_path / "DSC_0001.dng"), "-o", str(out)]
    assert main([*args, "--engine", "gaussian", "--param", "radius=1"]) == 0
    with tifffile.TiffFile(out) as tif:
        assert tif.pages.first.dtype == np.uint16
        exif = tif.pages.first.tags["ExifTag"].value
        pixels = tif.pages.first.asarray() / 65535
        icc = tif.pages.first.tags["InterColorProfile"].value
    assert tuple(exif["ExposureTime"]) == (1, 125)
    assert exif["ISOSpeedRatings"] == 400 and exif["LensModel"] == "Synthetic 50mm f/1.8"
    # The look of the camera's development: sRGB-encoded and tagged so (linear light saved
    # untagged would look two stops dark, 0.25 stored instead of 0.54).
    assert "sRGB" in ImageCms.getProfileName(ImageCms.ImageCmsProfile(BytesIO(bytes(icc))))
    assert np.abs(pixels[30:34, 44:52] - _srgb_encode(np.array([0.6, 0.2, 0.1]))).max() < 2e-3
    assert np.abs(pixels[5:10, 5:10] - _srgb_encode(np.array(0.25))).max() < 2e-3


def test_raw_is_never_written(tmp_path):
    with pytest.raises(UsageError, match="use one of"):
        write_image(_photo(16), tmp_path / "out.dng")
