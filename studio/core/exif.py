"""EXIF: exposure data, orientation, and the EXIF a processed file should carry.

EXIF travels through Studio as the bytes Pillow's `Image.Exif.tobytes()` writes (``Exif\\0\\0``
followed by a TIFF structure), whatever format it came from.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import MutableMapping, Sequence
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, TiffImagePlugin
from PIL import Image as PILImage

import studio

ORIENTATION = 0x0112
IMAGE_DESCRIPTION = 0x010E
SOFTWARE = 0x0131
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
EXPOSURE_TIME = 0x829A
F_NUMBER = 0x829D
ISO_SPEED = 0x8827
PIXEL_X_DIMENSION = 0xA002
PIXEL_Y_DIMENSION = 0xA003
INTEROP_IFD = 0xA005
MAKER_NOTE = 0x927C

# IFD0 tags that describe the photograph rather than the pixel layout of one file.
DESCRIPTIVE_TAGS = (
    IMAGE_DESCRIPTION,
    0x010F,  # Make
    0x0110,  # Model
    ORIENTATION,
    0x011A,  # XResolution
    0x011B,  # YResolution
    0x0128,  # ResolutionUnit
    SOFTWARE,
    0x0132,  # DateTime
    0x013B,  # Artist
    0x013C,  # HostComputer
    0x8298,  # Copyright
)

# EXIF fields that TIFF/EP-style RAW files (and DNGs) may keep in IFD0 instead of the EXIF IFD.
CAPTURE_TAGS = (
    EXPOSURE_TIME,
    F_NUMBER,
    ISO_SPEED,
    0x9003,  # DateTimeOriginal
    0x920A,  # FocalLength
    0xA432,  # LensSpecification
    0xA433,  # LensMake
    0xA434,  # LensModel
)

Array = npt.NDArray[np.generic]
STUDIO = f"Studio {studio.__version__}"


def load_exif(data: bytes | None) -> PILImage.Exif:
    """Parse EXIF bytes (with or without the ``Exif\\0\\0`` prefix); empty when `data` is None."""
    exif = PILImage.Exif()
    if data:
        exif.load(data)
    return exif


def exif_bytes(exif: PILImage.Exif) -> bytes | None:
    """Serialise `exif`, or None when it holds nothing (its EXIF and GPS IFDs included)."""
    empty = not len(exif) and not any(exif.get_ifd(tag) for tag in (EXIF_IFD, GPS_IFD))
    return None if empty else exif.tobytes()


def read_tiff_exif(fp: BinaryIO) -> PILImage.Exif:
    """The descriptive IFD0 tags plus the EXIF and GPS sub-IFDs of a TIFF-structured file
    (with capture fields found in IFD0, as TIFF/EP RAW files keep them, moved to EXIF)."""
    source = PILImage.Exif()
    source.load_from_fp(fp)
    exif = PILImage.Exif()
    for tag in DESCRIPTIVE_TAGS:
        if tag in source:
            exif[tag] = source[tag]
    for tag in (EXIF_IFD, GPS_IFD):
        values = sub_ifd(source, tag)
        if values:
            exif.get_ifd(tag).update(values)
    capture = exif.get_ifd(EXIF_IFD)
    for tag in CAPTURE_TAGS:
        if tag in source and tag not in capture:
            capture[tag] = source[tag]
    return exif


def sub_ifd(exif: PILImage.Exif, tag: int) -> dict[int, object]:
    """The tags of sub-IFD `tag` (EXIF or GPS) that can be moved to another file."""
    return {k: v for k, v in exif.get_ifd(tag).items() if k != INTEROP_IFD}


def ifd_bytes(values: dict[int, object], group: int, offset: int) -> bytes:
    """Little-endian bytes of an IFD holding `values`, placed at file position `offset`."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=b"II*\x00\x08\x00\x00\x00", group=group)
    for key, value in values.items():
        ifd[key] = value
    return bytes(ifd.tobytes(offset))


def positive(value: object) -> float | None:
    """`value` (or its first item) as a finite positive number, else None."""
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    if not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (ValueError, ZeroDivisionError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def exposure(exif: PILImage.Exif) -> tuple[float | None, float | None, float | None]:
    """(exposure time in seconds, f-number, ISO) where the EXIF records them."""
    ifd = exif.get_ifd(EXIF_IFD)
    return (
        positive(ifd.get(EXPOSURE_TIME)),
        positive(ifd.get(F_NUMBER)),
        positive(ifd.get(ISO_SPEED)),
    )


def orientation(exif: PILImage.Exif) -> int:
    """The EXIF orientation (1 to 8); 1 when absent or invalid."""
    value = exif.get(ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def apply_orientation(array: Array, value: int) -> Array:
    """Turn (H, W, ...) `array` stored with EXIF orientation `value` upright."""
    transforms = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a[::-1].swapaxes(0, 1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: a[:, ::-1].swapaxes(0, 1),
    }
    return np.ascontiguousarray(transforms[value](array))


_XMP_ORIENTATION = re.compile(
    rb"(tiff:Orientation\s*=\s*[\"']|<tiff:Orientation>\s*)[1-8](?=\s*[\"<])"
)


def upright_xmp(xmp: bytes) -> bytes:
    """`xmp` with any tiff:Orientation set to 1, for pixels that were turned upright."""
    return _XMP_ORIENTATION.sub(rb"\g<1>1", xmp)


def describe(history: Sequence[str]) -> str:
    """The Software text of a file Studio wrote after the operations in `history`."""
    return f"{STUDIO}: " + "; ".join(history) if history else STUDIO


def is_layout_description(text: object) -> bool:
    """Whether an ImageDescription is tifffile's or ImageJ's record of one file's array layout."""
    value = str(text).lstrip()
    return value.startswith("ImageJ=") or (value.startswith("{") and '"shape"' in value)


def output_exif(
    data: bytes | None, history: Sequence[str], width: int, height: int
) -> PILImage.Exif:
    """EXIF for a written image: upright orientation, its size, and Studio's steps in Software.

    The photographer's ImageDescription is kept as it is; one that only records another file's
    array layout (tifffile's JSON, ImageJ) is dropped, since it would misdescribe this file.
    """
    exif = load_exif(data)
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    if IMAGE_DESCRIPTION in exif and is_layout_description(exif[IMAGE_DESCRIPTION]):
        del exif[IMAGE_DESCRIPTION]
    sub = exif.get_ifd(EXIF_IFD)
    if PIXEL_X_DIMENSION in sub or PIXEL_Y_DIMENSION in sub:
        sub[PIXEL_X_DIMENSION] = width
        sub[PIXEL_Y_DIMENSION] = height
    sub.pop(INTEROP_IFD, None)
    if history:
        exif[SOFTWARE] = describe(history)
    return exif


def drop_broken_fields(exif: PILImage.Exif) -> list[str]:
    """Remove the fields of `exif` that cannot be written back; return their names."""
    try:
        exif.tobytes()
        return []
    except Exception:
        pass
    dropped = []
    groups: list[tuple[int | None, MutableMapping[int, Any], dict[int, str]]] = [
        (None, exif, ExifTags.TAGS),
        (EXIF_IFD, exif.get_ifd(EXIF_IFD), ExifTags.TAGS),
        (GPS_IFD, exif.get_ifd(GPS_IFD), ExifTags.GPSTAGS),
    ]
    for group, values, names in groups:
        for tag in [tag for tag in values if tag not in (EXIF_IFD, GPS_IFD)]:
            if not _serialisable(tag, values[tag], group):
                del values[tag]
                dropped.append(names.get(tag, f"0x{tag:04X}"))
    return dropped


def _serialisable(tag: int, value: object, group: int | None) -> bool:
    ifd = TiffImagePlugin.ImageFileDirectory_v2(group=group)
    try:
        ifd[tag] = value
        ifd.tobytes(0)
    except Exception:
        return False
    return True


def fit_exif(exif: PILImage.Exif, limit: int) -> bytes | None:
    """Serialised `exif` of at most `limit` bytes, dropping the maker note and then all EXIF."""
    data = exif_bytes(exif)
    if data is not None and len(data) > limit:
        exif.get_ifd(EXIF_IFD).pop(MAKER_NOTE, None)
        data = exif_bytes(exif)
    return data if data is not None and len(data) <= limit else None
