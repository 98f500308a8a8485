"""GPS, lens, copyright, orientation and maker notes survive every writer, field by field.

Each output is read back with Pillow's EXIF parser (and tifffile for TIFF, OpenEXR for EXR),
never with Studio's own reader. Where a format has no place for a field (OpenEXR, Radiance HDR,
JPEG's 64 KB segments), the test asserts that the photographer is told, by name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import OpenEXR
import pillow_heif
import pytest
import tifffile
from PIL import Image as PILImage

from studio.core.image import Image, ImageMeta
from studio.core.imageio import read_image, write_image

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
COPYRIGHT, ARTIST, MAKE, MODEL, ORIENTATION = 0x8298, 0x013B, 0x010F, 0x0110, 0x0112
LENS_MAKE, LENS_MODEL, LENS_SPEC, FOCAL_LENGTH, MAKER_NOTE = 0xA433, 0xA434, 0xA432, 0x920A, 0x927C
DATE_ORIGINAL = 0x9003
MAKER_NOTE_BYTES = b"Nikon\x00\x02\x10\x00\x00" + bytes(range(256)) * 4
GPS = {
    0x0000: b"\x02\x03\x00\x00",  # GPSVersionID
    0x0001: "N",
    0x0002: (52.0, 22.0, 12.5),
    0x0003: "E",
    0x0004: (4.0, 53.0, 42.25),
    0x0005: b"\x00",  # above sea level
    0x0006: 12.5,
    0x001D: "2026:06:21",
}
LATITUDE, LONGITUDE = 52 + 22 / 60 + 12.5 / 3600, 4 + 53 / 60 + 42.25 / 3600


def _camera_exif() -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[MAKE], exif[MODEL] = "NIKON CORPORATION", "NIKON Z 8"
    exif[COPYRIGHT], exif[ARTIST] = "(c) 2026 Ada Lovelace", "Ada Lovelace"
    exif[ORIENTATION] = 6  # stored on its side: turned upright on reading
    sub = exif.get_ifd(EXIF_IFD)
    sub[LENS_MAKE], sub[LENS_MODEL] = "Nikon", "NIKKOR Z 24-70mm f/2.8 S"
    sub[LENS_SPEC] = (24.0, 70.0, 2.8, 2.8)
    sub[FOCAL_LENGTH] = 35.0
    sub[DATE_ORIGINAL] = "2026:06:21 05:12:00"
    sub[MAKER_NOTE] = MAKER_NOTE_BYTES
    exif.get_ifd(GPS_IFD).update(GPS)
    return exif


@pytest.fixture(scope="module")
def camera_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera JPEG, 12x20 stored on its side (orientation 6)."""
    path = tmp_path_factory.mktemp("camera") / "DSC_0001.jpg"
    stored = np.random.default_rng(19).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    PILImage.fromarray(stored).save(path, exif=_camera_exif(), quality=95)
    return path


def _jxl_exif_box(path: Path) -> bytes:
    """The TIFF bytes of a JPEG XL file's 'Exif' box (ISO BMFF: size, type, 4-byte offset)."""
    data = path.read_bytes()
    at = data.index(b"Exif") - 4
    return data[at + 12 : at + int.from_bytes(data[at : at + 4], "big")]


def _written_exif(path: Path) -> tuple[dict[int, object], dict[int, object], dict[int, object]]:
    """(IFD0, EXIF IFD, GPS IFD) of a written file, as Pillow's EXIF parser reads them."""
    exif = PILImage.Exif()
    with path.open("rb") as stream:
        if path.suffix == ".tif":  # Pillow decodes no float RGB TIFF, but parses its tags
            exif.load_from_fp(stream)
        elif path.suffix == ".heic":
            exif.load(pillow_heif.open_heif(stream).info["exif"])
        elif path.suffix == ".jxl":
            exif.load(_jxl_exif_box(path))
        else:
            exif = PILImage.open(stream).getexif()
        return dict(exif), dict(exif.get_ifd(EXIF_IFD)), dict(exif.get_ifd(GPS_IFD))


WRITERS = [(".jpg", None), (".png", 8), (".png", 16), (".webp", None), (".tif", 8),
           (".tif", 16), (".tif", 32), (".avif", 8), (".avif", 16), (".heic", 8), (".heic", 16),
           (".jxl", 8), (".jxl", 16), (".jxl", 32)]  # fmt: skip


@pytest.mark.parametrize(("suffix", "depth"), WRITERS)
def test_camera_metadata_round_trips_field_by_field(tmp_path, camera_photo, suffix, depth, caplog):
    image = read_image(camera_photo)
    assert (image.height, image.width) == (20, 12)  # turned upright
    processed = image.with_pixels(image.pixels * 0.9, step="denoise")
    with caplog.at_level(logging.WARNING):
        out = write_image(processed, tmp_path / f"out{suffix}", bit_depth=depth, quality=100)
    assert not caplog.records  # everything kept: nothing to tell
    exif, sub, gps = _written_exif(out)

    assert exif[MAKE] == "NIKON CORPORATION" and exif[MODEL] == "NIKON Z 8"
    assert exif[COPYRIGHT] == "(c) 2026 Ada Lovelace" and exif[ARTIST] == "Ada Lovelace"
    assert exif.get(ORIENTATION, 1) == 1  # the pixels are upright now
    assert read_image(out).pixels.shape[:2] == (20, 12)

    assert sub[LENS_MAKE] == "Nikon" and sub[LENS_MODEL] == "NIKKOR Z 24-70mm f/2.8 S"
    assert [float(v) for v in sub[LENS_SPEC]] == pytest.approx([24.0, 70.0, 2.8, 2.8])
    assert float(sub[FOCAL_LENGTH]) == pytest.approx(35.0)
    assert sub[DATE_ORIGINAL] == "2026:06:21 05:12:00"
    assert bytes(sub[MAKER_NOTE]) == MAKER_NOTE_BYTES

    assert gps[0x0001] == "N" and gps[0x0003] == "E"
    assert [float(v) for v in gps[0x0002]] == pytest.approx([52.0, 22.0, 12.5])
    assert [float(v) for v in gps[0x0004]] == pytest.approx([4.0, 53.0, 42.25])
    assert float(gps[0x0006]) == pytest.approx(12.5)
    assert gps[0x001D] == "2026:06:21"


def test_tifffile_sees_the_gps_and_exif_blocks(tmp_path, camera_photo):
    out = write_image(read_image(camera_photo), tmp_path / "out.tif")
    with tifffile.TiffFile(out) as tif:
        tags = tif.pages.first.tags
        gps, exif = tags["GPSTag"].value, tags["ExifTag"].value
        assert tags["Copyright"].value == "(c) 2026 Ada Lovelace"
    assert gps["GPSLatitudeRef"] == "N"
    assert exif["LensModel"] == "NIKKOR Z 24-70mm f/2.8 S"


def test_exr_keeps_what_its_standard_attributes_hold(tmp_path, camera_photo):
    """OpenEXR's standard attributes: owner (copyright), latitude/longitude/altitude in degrees
    and metres, and the camera and lens names; no orientation (pixels are upright) or maker note.
    """
    out = write_image(read_image(camera_photo), tmp_path / "out.exr")
    with OpenEXR.File(str(out), header_only=True) as exr:
        header = dict(exr.header())
    assert header["owner"] == "(c) 2026 Ada Lovelace"
    assert header["latitude"] == pytest.approx(LATITUDE, abs=1e-5)
    assert header["longitude"] == pytest.approx(LONGITUDE, abs=1e-5)
    assert header["altitude"] == pytest.approx(12.5)
    assert header["cameraMake"] == "NIKON CORPORATION" and header["cameraModel"] == "NIKON Z 8"
    assert header["lensModel"] == "NIKKOR Z 24-70mm f/2.8 S"
    # ...and Studio reads them back into EXIF, so EXR -> JPEG keeps them too.
    exif, sub, gps = _written_exif(write_image(read_image(out), tmp_path / "again.jpg"))
    assert exif[COPYRIGHT] == "(c) 2026 Ada Lovelace"
    assert sub[LENS_MODEL] == "NIKKOR Z 24-70mm f/2.8 S"
    degrees = sum(float(v) / 60**i for i, v in enumerate(gps[0x0002]))  # type: ignore[attr-defined]
    assert gps[0x0001] == "N" and degrees == pytest.approx(LATITUDE, abs=1e-5)


def test_exr_names_the_exif_fields_it_has_no_place_for(tmp_path, camera_photo, caplog):
    with caplog.at_level(logging.WARNING):
        write_image(read_image(camera_photo), tmp_path / "out.exr")
    told = caplog.text.partition("out.exr: EXR cannot hold the EXIF fields ")[2]
    named = set(told.partition(":")[0].split(", "))
    assert {"Artist", "MakerNote", "FocalLength", "LensSpecification", "GPSDateStamp"} <= named
    # OpenEXR keeps these, and the pixels are upright
    assert not named & {"Copyright", "Make", "LensModel", "GPSLatitude", "Orientation"}


def test_radiance_hdr_says_it_keeps_no_metadata(tmp_path, camera_photo, caplog):
    with caplog.at_level(logging.WARNING):
        out = write_image(read_image(camera_photo), tmp_path / "out.hdr")
    assert "out.hdr: HDR cannot hold its EXIF (camera, lens, exposure, GPS, copyright)" in (
        caplog.text
    )
    assert b"Ada Lovelace" not in out.read_bytes()  # indeed not kept


def _with_exif(exif: PILImage.Exif, xmp: bytes | None = None) -> Image:
    return Image(np.zeros((4, 4, 3), np.float32), ImageMeta(exif=exif.tobytes(), xmp=xmp))


def test_jpeg_says_when_the_maker_note_does_not_fit_its_64_kb_segment(tmp_path, caplog):
    exif = _camera_exif()
    exif.get_ifd(EXIF_IFD)[MAKER_NOTE] = b"\x01" * 70_000
    with caplog.at_level(logging.WARNING):
        out = write_image(_with_exif(exif), tmp_path / "out.jpg")
    assert "out.jpg: JPEG cannot hold its maker note (68 KB; JPEG holds at most 64 KB)" in (
        caplog.text
    )
    exif, sub, gps = _written_exif(out)
    assert MAKER_NOTE not in sub and sub[LENS_MODEL] == "NIKKOR Z 24-70mm f/2.8 S"
    assert exif[COPYRIGHT] == "(c) 2026 Ada Lovelace" and gps[0x0001] == "N"


def test_jpeg_says_when_its_exif_or_xmp_is_too_large_to_keep(tmp_path, caplog):
    exif = _camera_exif()
    exif.get_ifd(EXIF_IFD)[0x9286] = "x" * 70_000  # UserComment: too large even without a note
    xmp = b"<x:xmpmeta>" + b" " * 70_000 + b"</x:xmpmeta>"
    with caplog.at_level(logging.WARNING):
        out = write_image(_with_exif(exif, xmp), tmp_path / "out.jpg")
    assert "cannot hold its EXIF (" in caplog.text and "; its XMP (68 KB;" in caplog.text
    with PILImage.open(out) as written:
        assert not written.getexif() and "xmp" not in written.info


def test_exposure_alone_survives_exr_to_jpeg(tmp_path):
    """EXIF holding only an EXIF IFD (no IFD0 field) is still written."""
    meta = ImageMeta(bit_depth=32, exposure_time=1 / 30, f_number=4.0, iso=200.0)
    exr = write_image(Image(np.full((4, 6, 3), 0.5, np.float32), meta), tmp_path / "r.exr")
    _, sub, _ = _written_exif(write_image(read_image(exr), tmp_path / "r.jpg"))
    assert float(sub[0x829A]) == pytest.approx(1 / 30) and float(sub[0x829D]) == 4.0


_TIFF_EP_TAGS = [  # (tag, tifffile type, count, value, written once): IFD0 as RAW files keep it
    (MAKE, "s", 0, "FUJIFILM", True),
    (MODEL, "s", 0, "X-T5", True),
    (ARTIST, "s", 0, "Ada Lovelace", True),
    (0x013C, "s", 0, "darkroom-pc", True),  # HostComputer
    (COPYRIGHT, "s", 0, "(c) 2026 Ada Lovelace", True),
    (ORIENTATION, "H", 1, 6, True),
    (0x829A, "2I", 1, (1, 250), True),  # ExposureTime, in IFD0 as TIFF/EP allows
    (0x829D, "2I", 1, (28, 10), True),  # FNumber
    (0x8827, "H", 1, 400, True),  # ISO
    (DATE_ORIGINAL, "s", 0, "2026:06:21 05:12:00", True),
    (FOCAL_LENGTH, "2I", 1, (35, 1), True),
    (LENS_MODEL, "s", 0, "XF 35mm F1.4 R", True),
    (LENS_MAKE, "s", 0, "FUJIFILM", True),
    (LENS_SPEC, "2I", 4, (35, 1, 35, 1, 14, 10, 14, 10), True),
]


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_a_tiff_s_descriptive_and_capture_tags_carry_to_the_output(tmp_path, suffix):
    """A TIFF written by tifffile (not Studio) with print resolution, names, dates and, in
    IFD0 as TIFF/EP RAW files keep them, the exposure fields; they move to the EXIF IFD."""
    source = tmp_path / "camera.tif"
    tifffile.imwrite(
        source, np.full((8, 10, 3), 100, np.uint8), photometric="rgb", metadata=None,
        description="Harbour at dawn", software="Camera FW 1.0", datetime="2026:06:21 06:00:00",
        resolution=(300, 300), resolutionunit=2, extratags=_TIFF_EP_TAGS,
    )  # fmt: skip
    image = read_image(source)
    assert (image.height, image.width) == (10, 8)
    out = write_image(image.with_pixels(image.pixels, step="denoise"), tmp_path / f"o{suffix}")
    exif, sub, _ = _written_exif(out)
    assert exif[0x010E] == "Harbour at dawn" and exif[0x0132] == "2026:06:21 06:00:00"
    assert float(exif[0x011A]) == float(exif[0x011B]) == 300.0 and exif[0x0128] == 2
    assert exif[MAKE] == "FUJIFILM" and exif[MODEL] == "X-T5" and exif[0x013C] == "darkroom-pc"
    assert exif[COPYRIGHT] == "(c) 2026 Ada Lovelace" and exif[ARTIST] == "Ada Lovelace"
    assert exif[0x0131].endswith(": denoise") and exif.get(ORIENTATION, 1) == 1
    assert float(sub[0x829A]) == pytest.approx(1 / 250) and float(sub[0x829D]) == 2.8
    assert sub[0x8827] == 400 and sub[DATE_ORIGINAL] == "2026:06:21 05:12:00"
    assert float(sub[FOCAL_LENGTH]) == 35.0 and sub[LENS_MODEL] == "XF 35mm F1.4 R"
    assert sub[LENS_MAKE] == "FUJIFILM"
    assert [float(v) for v in sub[LENS_SPEC]] == pytest.approx([35.0, 35.0, 1.4, 1.4])


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".heic"])
def test_the_exif_pixel_size_is_the_written_picture_s(tmp_path, suffix):
    """A camera records the stored size (20x12, on its side); the upright output is 12x20, and
    a half-size result 6x10: the EXIF must not keep the camera's figures."""
    exif = _camera_exif()
    exif.get_ifd(EXIF_IFD).update({0xA002: 20, 0xA003: 12})  # PixelXDimension, PixelYDimension
    source = tmp_path / "DSC_0002.jpg"
    stored = np.random.default_rng(4).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    PILImage.fromarray(stored).save(source, exif=exif, quality=95)
    image = read_image(source)
    half = image.with_pixels(image.pixels[::2, ::2], step="resize")
    _, sub, _ = _written_exif(write_image(half, tmp_path / f"out{suffix}", bit_depth=8))
    assert (sub[0xA002], sub[0xA003]) == (6, 10)


def _shot_with(tmp_path: Path, **capture: object) -> ImageMeta:
    exif = PILImage.Exif()
    exif.get_ifd(EXIF_IFD).update({_CAPTURE[name]: value for name, value in capture.items()})
    path = tmp_path / "shot.jpg"
    PILImage.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path, exif=exif)
    return read_image(path).meta


_CAPTURE = {"exposure": 0x829A, "aperture": 0x829D, "iso": 0x8827}


def test_an_iso_recorded_as_several_values_is_the_first(tmp_path):
    """ISOSpeedRatings may hold several values (some cameras add a 0): the first is the ISO."""
    assert _shot_with(tmp_path, iso=(800, 0)).iso == 800


def test_a_zero_exposure_or_aperture_means_unknown(tmp_path):
    """A manual lens records f/0 and some cameras exposure 0: unknown, never 0 (a bracket
    merge would divide by it)."""
    meta = _shot_with(tmp_path, exposure=0.0, aperture=0.0, iso=0)
    assert (meta.exposure_time, meta.f_number, meta.iso) == (None, None, None)
    meta = _shot_with(tmp_path, exposure=1 / 60, aperture=2.8, iso=100)
    assert meta.exposure_time == pytest.approx(1 / 60) and type(meta.exposure_time) is float
    assert (meta.f_number, meta.iso) == (pytest.approx(2.8), 100)
