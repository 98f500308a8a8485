"""A corpus of odd but valid images, generated here, each read as its reference reader reads it.

Modelled on PngSuite and libtiff's test images: interlaced PNG, bilevel G3/G4 scans, CIELab
and signed-integer TIFFs, palette and multi-page files, tiled, planar and big-endian layouts,
CMYK JPEG, JPEG with a malformed EXIF field, (broken) APNGs and animated WebP. The Pillow wheel
ships no test images, and nothing is downloaded.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms

from studio.core.errors import BadInputError
from studio.core.exif import load_exif
from studio.core.imageio import decoders, read_image

RNG = np.random.default_rng(16)
RGB = RNG.integers(0, 256, (12, 17, 3), dtype=np.uint8)
BITS = RNG.random((12, 17)) > 0.5
Case = Callable[[Path], np.ndarray]  # writes the file, returns the expected pixels in [0, 1]


def _pillow_reference(path: Path, mode: str = "RGB") -> np.ndarray:
    with PILImage.open(path) as picture:
        return np.asarray(picture.convert(mode), np.float32) / 255


def _bilevel_g4(path: Path) -> np.ndarray:
    PILImage.fromarray(BITS).save(path, compression="group4")
    return _pillow_reference(path, "L")[..., None]


def _bilevel_g3(path: Path) -> np.ndarray:
    PILImage.fromarray(BITS).save(path, compression="group3")
    return _pillow_reference(path, "L")[..., None]


def _bilevel_min_is_white(path: Path) -> np.ndarray:
    tifffile.imwrite(path, BITS, photometric="miniswhite")
    return np.where(BITS, 0.0, 1.0)[..., None]  # a set bit is black


def _palette_pages(path: Path) -> np.ndarray:
    frames = [PILImage.fromarray(np.roll(RGB, k, axis=1)).convert("P") for k in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return _pillow_reference(path)


def _int16(path: Path) -> np.ndarray:
    values = RNG.integers(-32768, 32767, (12, 17), dtype=np.int16)
    tifffile.imwrite(path, values)
    return (tifffile.imread(path).astype(np.float64) / 32767)[..., None]


def _int32_rgb(path: Path) -> np.ndarray:
    values = RNG.integers(-(2**31), 2**31 - 1, (12, 17, 3), dtype=np.int32)
    tifffile.imwrite(path, values, photometric="rgb")
    return tifffile.imread(path).astype(np.float64) / (2**31 - 1)


def _uint32(path: Path) -> np.ndarray:
    tifffile.imwrite(path, RNG.integers(0, 2**32 - 1, (12, 17), dtype=np.uint32))
    return (tifffile.imread(path).astype(np.float64) / (2**32 - 1))[..., None]


def _float64(path: Path) -> np.ndarray:
    tifffile.imwrite(path, RNG.normal(0.5, 2.0, (12, 17, 3)), photometric="rgb")
    return tifffile.imread(path)


def _float16(path: Path) -> np.ndarray:
    tifffile.imwrite(path, RNG.random((12, 17, 3)).astype(np.float16), photometric="rgb")
    return tifffile.imread(path)


def _tifffile_case(**options: object) -> Case:
    def write(path: Path) -> np.ndarray:
        values = RNG.integers(0, 65536, (40, 50, 3), dtype=np.uint16)
        tifffile.imwrite(path, values, photometric="rgb", **options)
        return tifffile.imread(path) / 65535

    return write


def _planar(path: Path) -> np.ndarray:
    tifffile.imwrite(path, np.moveaxis(RGB, 2, 0), photometric="rgb", planarconfig="separate")
    return RGB / 255


def _cmyk_tiff(path: Path) -> np.ndarray:
    PILImage.fromarray(RGB).convert("CMYK").save(path)
    return _pillow_reference(path)


def _cmyk_jpeg(path: Path) -> np.ndarray:
    PILImage.fromarray(RGB).convert("CMYK").save(path, quality=100)
    return _pillow_reference(path)


def _progressive_jpeg(path: Path) -> np.ndarray:
    PILImage.fromarray(RGB).save(path, progressive=True, quality=95)
    return _pillow_reference(path)


def _palette_png(path: Path) -> np.ndarray:
    PILImage.fromarray(RGB).convert("P").save(path)
    return _pillow_reference(path)


def _bilevel_png(path: Path) -> np.ndarray:
    PILImage.fromarray(BITS).save(path)
    return BITS.astype(np.float64)[..., None]


def _one_pixel_png(path: Path) -> np.ndarray:
    PILImage.fromarray(RGB[:1, :1]).save(path)
    return RGB[:1, :1] / 255


def _odd_size_16bit_grey_png(path: Path) -> np.ndarray:
    grey = RNG.integers(0, 65536, (7, 3), dtype=np.uint16)
    PILImage.fromarray(grey).save(path)  # Pillow writes 16-bit grey PNGs
    return (grey / 65535)[..., None]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _interlaced_png(path: Path) -> np.ndarray:
    """An Adam7-interlaced RGB PNG (Pillow reads these but does not write them)."""
    pixels = RNG.integers(0, 256, (13, 19, 3), dtype=np.uint8)
    passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
              (0, 1, 2, 2), (1, 0, 2, 1)]  # fmt: skip
    raw = b"".join(
        b"\x00" + row.tobytes()  # filter type 0 on every row
        for y0, x0, dy, dx in passes
        for row in pixels[y0::dy, x0::dx]
        if row.size
    )
    header = struct.pack(">IIBBBBB", 19, 13, 8, 2, 0, 0, 1)  # 8-bit RGB, Adam7
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
                     + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))  # fmt: skip
    np.testing.assert_allclose(_pillow_reference(path), pixels / 255, atol=1e-6)  # valid
    return pixels / 255


CORPUS: dict[str, tuple[str, Case]] = {
    "bilevel-g4": (".tif", _bilevel_g4),
    "bilevel-g3": (".tif", _bilevel_g3),
    "bilevel-miniswhite": (".tif", _bilevel_min_is_white),
    "palette-multipage": (".tif", _palette_pages),
    "int16": (".tif", _int16),
    "int32-rgb": (".tif", _int32_rgb),
    "uint32": (".tif", _uint32),
    "float64": (".tif", _float64),
    "float16": (".tif", _float16),
    "tiled": (".tif", _tifffile_case(tile=(16, 16))),
    "big-endian": (".tif", _tifffile_case(byteorder=">")),
    "lzw": (".tif", _tifffile_case(compression="lzw")),
    "planar": (".tif", _planar),
    "cmyk-tiff": (".tif", _cmyk_tiff),
    "cmyk-jpeg": (".jpg", _cmyk_jpeg),
    "progressive-jpeg": (".jpg", _progressive_jpeg),
    "palette-png": (".png", _palette_png),
    "bilevel-png": (".png", _bilevel_png),
    "one-pixel-png": (".png", _one_pixel_png),
    "odd-size-16bit-grey-png": (".png", _odd_size_16bit_grey_png),
    "interlaced-png": (".png", _interlaced_png),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_odd_image_reads_as_its_reference_reader_reads_it(tmp_path, name):
    suffix, case = CORPUS[name]
    path = tmp_path / f"{name}{suffix}"
    expected = np.asarray(case(path), np.float64)
    image = read_image(path)
    assert image.pixels.shape == expected.shape
    tolerance = 1e-6 if image.meta.bit_depth == 32 else 0.5 / 65535
    np.testing.assert_allclose(image.pixels, expected, atol=tolerance, rtol=1e-6)


def _lab_tiff(path: Path) -> np.ndarray:
    """An 8-bit CIELab TIFF as Pillow and Photoshop write it, and LittleCMS's sRGB of it."""
    to_lab = ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
    )
    lab = ImageCms.applyTransform(PILImage.fromarray(RGB), to_lab)
    assert lab is not None
    lab.save(path)
    to_rgb = ImageCms.buildTransform(
        ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
    )
    with PILImage.open(path) as stored:
        back = ImageCms.applyTransform(stored, to_rgb)
    assert back is not None
    return np.asarray(back, np.float64) / 255


def test_cielab_tiff_becomes_the_srgb_it_was_made_from(tmp_path):
    littlecms = _lab_tiff(tmp_path / "lab.tif")
    image = read_image(tmp_path / "lab.tif")
    assert image.channels == 3 and image.meta.bit_depth == 16
    # Through 8-bit Lab, measured mean errors against the source sRGB: Studio 0.0027,
    # LittleCMS's own Lab->sRGB transform of the same file 0.0042.
    studio_error = np.abs(image.pixels - RGB / 255).mean()
    assert studio_error < 0.0035
    assert studio_error <= np.abs(littlecms - RGB / 255).mean()


@pytest.mark.parametrize("icc", [False, True])
def test_16bit_cielab_tiff_neutral_axis_and_hue(tmp_path, icc):
    """L* 0/50/100 with a* = b* = 0 is black, mid grey (sRGB 0.4663) and white; a* > 0 is red."""
    lab = np.zeros((1, 4, 3), np.uint16)
    lab[0, :, 0] = np.round(np.array([0, 50, 100, 50]) / 100 * 65535).astype(np.uint16)
    offset = 32768 if icc else 0  # ICCLAB stores a*, b* unsigned with an offset
    lab[0, :, 1:] = offset
    lab[0, 3, 1] = (offset + 60 * 256) % 65536  # a* = +60
    tifffile.imwrite(tmp_path / "lab.tif", lab, photometric=9 if icc else 8)
    pixels = read_image(tmp_path / "lab.tif").pixels[0]
    np.testing.assert_allclose(pixels[:3], [[0] * 3, [0.4663] * 3, [1] * 3], atol=2e-3)
    red, green, blue = pixels[3]
    assert red > 0.6 and green < 0.4 and blue > green


def test_float_cielab_tiff_neutral_axis_and_hue(tmp_path):
    """As above, with L*, a*, b* stored as float32 numbers."""
    lab = np.array([[[0, 0, 0], [50, 0, 0], [100, 0, 0], [50, 60, 0]]], np.float32)
    tifffile.imwrite(tmp_path / "lab.tif", lab, photometric=8)
    pixels = read_image(tmp_path / "lab.tif").pixels[0]
    np.testing.assert_allclose(pixels[:3], [[0] * 3, [0.4663] * 3, [1] * 3], atol=2e-3)
    red, green, blue = pixels[3]
    assert red > 0.6 and green < 0.4 and blue > green


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_cielab_tiff_alpha_keeps_its_scale(tmp_path, dtype):
    """Alpha beside CIELab: opaque stays 1 and half stays half, whatever the sample type."""
    lab = np.zeros((2, 3, 4), dtype)
    lab[..., 0] = 50 if dtype == np.float32 else 128
    top = 1.0 if dtype == np.float32 else 255
    lab[0, :, 3] = [top, top / 2, 0]
    extra = {"extrasamples": ("unassalpha",), "planarconfig": "contig"}
    tifffile.imwrite(tmp_path / "lab.tif", lab, photometric=8, **extra)
    image = read_image(tmp_path / "lab.tif")
    assert image.alpha is not None
    np.testing.assert_allclose(
        image.alpha[0], np.asarray(lab[0, :, 3], np.float64) / top, atol=1e-4
    )
    assert 0.45 < image.pixels.mean() < 0.48  # mid grey, not scaled by 255 or 65535


def test_16bit_cmyk_tiff_becomes_rgb_by_the_ink_arithmetic(tmp_path):
    """Pillow reads no 16-bit CMYK: Studio's own reader must. RGB = (1 - C|M|Y) x (1 - K)."""
    ink = np.random.default_rng(5).integers(0, 65536, (6, 7, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "cmyk.tif", ink, photometric="separated")
    image = read_image(tmp_path / "cmyk.tif")
    fractions = ink / 65535
    expected = (1 - fractions[..., :3]) * (1 - fractions[..., 3:])
    assert image.meta.bit_depth == 16
    np.testing.assert_allclose(image.pixels, expected, atol=1 / 65535)


def _apng(path: Path, frame_count: int | None = None) -> np.ndarray:
    frames = [PILImage.fromarray(np.roll(RGB, k, axis=0)) for k in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    if frame_count is not None:  # rewrite acTL with a frame count the spec forbids
        data = path.read_bytes()
        at = data.index(b"acTL")
        body = struct.pack(">II", frame_count, 0)
        chunk = b"acTL" + body + struct.pack(">I", zlib.crc32(b"acTL" + body))
        path.write_bytes(data[:at] + chunk + data[at + 16 :])
    return RGB / 255


@pytest.mark.parametrize("frame_count", [0, 2**31 + 5])
def test_apng_with_an_invalid_frame_count_reads_its_default_image(tmp_path, frame_count, recwarn):
    expected = _apng(tmp_path / "broken.png", frame_count)
    np.testing.assert_allclose(read_image(tmp_path / "broken.png").pixels, expected, atol=1e-6)
    assert not [w for w in recwarn if "APNG" in str(w.message)]  # no third-party warning leaks


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_only_the_first_frame_is_used_and_said(tmp_path, caplog, suffix):
    frames = [PILImage.fromarray(np.roll(RGB, k, axis=0)) for k in range(2)]  # the fewest
    options = {"lossless": True} if suffix == ".webp" else {}
    frames[0].save(tmp_path / f"anim{suffix}", save_all=True, append_images=frames[1:], **options)
    with caplog.at_level(logging.WARNING):
        image = read_image(tmp_path / f"anim{suffix}")
    np.testing.assert_allclose(image.pixels, RGB / 255, atol=1e-6)
    kind = "pages" if suffix == ".tif" else "frames"
    assert f"anim{suffix}: has 2 {kind}; Studio uses the first" in caplog.text


def test_single_page_tiff_with_a_thumbnail_says_nothing(tmp_path, caplog):
    with tifffile.TiffWriter(tmp_path / "thumb.tif") as tif:
        tif.write(RGB, photometric="rgb")
        tif.write(RGB[::4, ::4], photometric="rgb", subfiletype=1)  # a reduced-size preview
    with caplog.at_level(logging.WARNING):
        read_image(tmp_path / "thumb.tif")
    assert "pages" not in caplog.text


def test_a_decoder_crash_is_not_shown_as_a_python_error(tmp_path, monkeypatch):
    """An internal failure names the file and the format, not 'too many indices for array'."""
    PILImage.fromarray(RGB).save(tmp_path / "odd.png")

    def crash(path: Path, limit: int) -> None:
        raise IndexError("too many indices for array: array is 1-dimensional")

    monkeypatch.setitem(decoders.DECODERS, "png", crash)
    with pytest.raises(BadInputError) as refused:
        read_image(tmp_path / "odd.png")
    message = str(refused.value)
    assert message.startswith(f"Cannot read {tmp_path / 'odd.png'}: the PNG file is damaged")
    assert "indices" not in message


def _malformed_resolution_exif() -> bytes:
    """EXIF whose XResolution is ASCII text instead of a RATIONAL, as some phones write."""
    entries = [(0x010F, 2, b"Canon\x00"), (0x011A, 2, b"72/1\x00"), (0x0128, 3, b"\x02\x00")]
    directory = struct.pack("<H", len(entries))
    extra, base = b"", 8 + 2 + 12 * len(entries) + 4
    for tag, kind, value in entries:
        count = len(value) if kind == 2 else 1
        if len(value) <= 4:
            directory += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            directory += struct.pack("<HHII", tag, kind, count, base + len(extra))
            extra += value
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + directory + b"\x00" * 4 + extra


def test_jpeg_with_a_malformed_exif_field_opens_with_a_notice(tmp_path, caplog):
    PILImage.fromarray(RGB).save(tmp_path / "phone.jpg", exif=_malformed_resolution_exif())
    with caplog.at_level(logging.WARNING):
        image = read_image(tmp_path / "phone.jpg")
    assert "phone.jpg: ignoring the malformed EXIF field XResolution" in caplog.text
    exif = load_exif(image.meta.exif)
    assert exif[0x010F] == "Canon" and 0x011A not in exif
    np.testing.assert_allclose(image.pixels, _pillow_reference(tmp_path / "phone.jpg"), atol=1e-6)
