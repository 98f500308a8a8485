"""The EXIF fields OpenEXR has standard header attributes for, in both directions.

Exposure (expTime, aperture, isoSpeed), owner (copyright), capDate, the camera and lens names,
and GPS position as latitude/longitude in degrees and altitude in metres.
"""

from __future__ import annotations

from typing import Any

from PIL import ExifTags
from PIL import Image as PILImage

from studio.core import exif as exiflib

_MAKE, _MODEL, _COPYRIGHT = 0x010F, 0x0110, 0x8298
_DATE_ORIGINAL, _LENS_MAKE, _LENS_MODEL = 0x9003, 0xA433, 0xA434
_NUMBERS = (
    ("expTime", exiflib.EXPOSURE_TIME),
    ("aperture", exiflib.F_NUMBER),
    ("isoSpeed", exiflib.ISO_SPEED),
)
_TEXT: tuple[tuple[str, int | None, int], ...] = (
    ("owner", None, _COPYRIGHT),
    ("cameraMake", None, _MAKE),
    ("cameraModel", None, _MODEL),
    ("capDate", exiflib.EXIF_IFD, _DATE_ORIGINAL),
    ("lensMake", exiflib.EXIF_IFD, _LENS_MAKE),
    ("lensModel", exiflib.EXIF_IFD, _LENS_MODEL),
)
# GPS tags: references, degrees/minutes/seconds, altitude reference and altitude.
_LAT_REF, _LAT, _LON_REF, _LON, _ALT_REF, _ALT = 1, 2, 3, 4, 5, 6
_GPS_VERSION = 0
# Fields that need no place in an EXR: IFD pointers, the orientation (the pixels are written
# upright), the pixel size and the GPS block's version.
_STRUCTURAL = {
    exiflib.EXIF_IFD, exiflib.GPS_IFD, exiflib.INTEROP_IFD, exiflib.ORIENTATION,
    exiflib.PIXEL_X_DIMENSION, exiflib.PIXEL_Y_DIMENSION,
}  # fmt: skip
_KEPT: dict[int | None, set[int]] = {
    None: {tag for _, ifd, tag in _TEXT if ifd is None} | _STRUCTURAL,
    exiflib.EXIF_IFD: {tag for _, tag in _NUMBERS}
    | {tag for _, ifd, tag in _TEXT if ifd is not None}
    | _STRUCTURAL,
    exiflib.GPS_IFD: {_GPS_VERSION, _LAT_REF, _LAT, _LON_REF, _LON, _ALT_REF, _ALT},
}


def _group(exif: PILImage.Exif, ifd: int | None) -> Any:
    return exif if ifd is None else exif.get_ifd(ifd)


def exr_attributes(exif: PILImage.Exif) -> dict[str, Any]:
    """Header attributes for the fields of `exif` that OpenEXR has a standard place for."""
    header: dict[str, Any] = {}
    sub = exif.get_ifd(exiflib.EXIF_IFD)
    for attribute, tag in _NUMBERS:
        value = exiflib.positive(sub.get(tag))
        if value:
            header[attribute] = value
    for attribute, ifd, tag in _TEXT:
        text = _group(exif, ifd).get(tag)
        if isinstance(text, str) and text.strip("\x00 "):
            header[attribute] = text.strip("\x00 ")
    header.update(_position(exif.get_ifd(exiflib.GPS_IFD)))
    return header


def fields_left_out(exif: PILImage.Exif) -> list[str]:
    """The names of the EXIF fields of `exif` that OpenEXR has no standard attribute for."""
    names = []
    for ifd, kept in _KEPT.items():
        tags = ExifTags.GPSTAGS if ifd == exiflib.GPS_IFD else ExifTags.TAGS
        for tag in _group(exif, ifd):
            if tag not in kept:
                names.append(tags.get(tag, f"0x{tag:04X}"))
    return names


def _degrees(value: object, reference: object, negative: str) -> float | None:
    try:
        parts = [float(part) for part in value]  # type: ignore[attr-defined]
        degrees = float(sum(part / 60.0**index for index, part in enumerate(parts[:3])))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return -degrees if str(reference).upper().startswith(negative) else degrees


def _position(gps: dict[int, Any]) -> dict[str, float]:
    position: dict[str, float] = {}
    latitude = _degrees(gps.get(_LAT), gps.get(_LAT_REF), "S")
    longitude = _degrees(gps.get(_LON), gps.get(_LON_REF), "W")
    if latitude is not None and longitude is not None:
        position["latitude"], position["longitude"] = latitude, longitude
    try:
        altitude = float(gps[_ALT])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return position
    below = gps.get(_ALT_REF) in (1, b"\x01")
    position["altitude"] = -altitude if below else altitude
    return position


def exif_from_exr(header: dict[str, Any]) -> PILImage.Exif:
    """EXIF holding what an OpenEXR header's standard attributes record."""
    exif = PILImage.Exif()
    for attribute, tag in _NUMBERS:
        if isinstance(header.get(attribute), int | float) and header[attribute] > 0:
            exif.get_ifd(exiflib.EXIF_IFD)[tag] = float(header[attribute])
    for attribute, ifd, tag in _TEXT:
        if isinstance(header.get(attribute), str):
            _group(exif, ifd)[tag] = header[attribute]
    latitude, longitude = header.get("latitude"), header.get("longitude")
    if isinstance(latitude, int | float) and isinstance(longitude, int | float):
        gps = exif.get_ifd(exiflib.GPS_IFD)
        gps[_LAT_REF], gps[_LAT] = ("S" if latitude < 0 else "N"), _sexagesimal(latitude)
        gps[_LON_REF], gps[_LON] = ("W" if longitude < 0 else "E"), _sexagesimal(longitude)
        altitude = header.get("altitude")
        if isinstance(altitude, int | float):
            gps[_ALT_REF], gps[_ALT] = (b"\x01" if altitude < 0 else b"\x00"), abs(altitude)
    return exif


def _sexagesimal(degrees: float) -> tuple[float, float, float]:
    whole = abs(degrees)
    minutes = (whole - int(whole)) * 60
    return float(int(whole)), float(int(minutes)), round((minutes - int(minutes)) * 60, 4)
