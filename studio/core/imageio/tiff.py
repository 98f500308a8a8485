"""TIFF: every sample type and colour space the reference readers read; EXIF/GPS kept on writing.

tifffile decodes; what it cannot (old-style JPEG, odd layouts) Pillow gets a second chance at.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image as PILImage

from studio.core import exif as exiflib
from studio.core.errors import StudioError
from studio.core.imageio import colour
from studio.core.imageio.decoded import Decoded, Samples
from studio.core.imageio.formats import check_pixels, notice

_TEXT_TAGS = (0x010F, 0x0110, 0x0132, 0x013B, 0x013C, 0x8298)
# tifffile will not write the EXIF/GPS pointer tags, so the writer stores the pointer under the
# preceding (unused) code and renames it afterwards; the IFD stays sorted by code.
_POINTER_STAND_INS = {
    exiflib.EXIF_IFD: exiflib.EXIF_IFD - 1,
    exiflib.GPS_IFD: exiflib.GPS_IFD - 1,
}
_CLASSIC_LIMIT = 2**32 - 2**25
_LAB_SPACES = (8, 9)  # CIELAB (signed a*, b*) and ICCLAB (a*, b* offset by half the range)


class _Unsupported(ValueError):
    """tifffile gave samples Studio cannot interpret; Pillow may still read the file."""


# ---------------------------------------------------------------------------------------------
# Reading


def read_tiff(path: Path, limit: int, pillow: Any) -> Decoded:
    """Decode the first page of a TIFF; `pillow(path, limit)` is the fallback decoder."""
    try:
        decoded = _read_with_tifffile(path, limit)
    except StudioError:
        raise
    except Exception as error:
        try:
            decoded = pillow(path, limit)
        except StudioError:
            raise
        except Exception:
            raise error from None
    decoded.exif = _metadata_safely(path)
    return decoded


def _read_with_tifffile(path: Path, limit: int) -> Decoded:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        check_pixels(path, page.imagewidth, page.imagelength, limit)
        _tell_about_pages(tif, path)
        samples = np.asarray(page.asarray())
        if page.axes.startswith("S"):
            samples = np.moveaxis(samples, 0, -1)
        samples, depth, premultiplied, converted = _tiff_colour(page, samples)
        tags = page.tags
        icc = None if converted else _tag_bytes(tags.get(34675))
        xmp = _tag_bytes(tags.get(700))
    return Decoded(samples, depth, icc=icc or (colour.srgb_profile() if converted else None),
                   xmp=xmp, premultiplied=premultiplied)  # fmt: skip


def _tell_about_pages(tif: tifffile.TiffFile, path: Path) -> None:
    full_size = sum(1 for page in tif.pages if not int(getattr(page, "subfiletype", 0)) & 1)
    if full_size > 1:
        notice(f"{path.name}: has {full_size} pages; Studio uses the first")


def _metadata_safely(path: Path) -> PILImage.Exif:
    try:
        with path.open("rb") as stream:
            return exiflib.read_tiff_exif(stream)
    except Exception:
        notice(f"{path.name}: its EXIF metadata is unreadable; reading the picture without it")
        return PILImage.Exif()


def _tag_bytes(tag: tifffile.TiffTag | None) -> bytes | None:
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, str):
        return value.encode()
    return bytes(np.asarray(value, dtype=np.uint8)) if not isinstance(value, bytes) else value


def _tiff_colour(page: tifffile.TiffPage, samples: Samples) -> tuple[Samples, int, bool, bool]:
    """Grey/RGB (+ alpha) samples, their depth, premultiplied alpha, and a colour conversion."""
    photometric = tifffile.PHOTOMETRIC
    kind = page.photometric
    if samples.ndim == 2:
        samples = samples[..., None]
    if samples.ndim != 3:
        raise _Unsupported(f"unexpected sample layout {samples.shape}")
    if samples.dtype == np.bool_:  # bilevel
        samples = samples.astype(np.uint8) * np.uint8(255)
    converted = False
    if kind == photometric.PALETTE:
        samples = _palette_colours(np.asarray(page.colormap), samples)
    elif kind == photometric.SEPARATED and samples.shape[2] >= 4:
        samples = colour.cmyk_arithmetic(samples[..., :4])
    elif kind == photometric.MINISWHITE:
        samples = _invert(samples)
    elif kind in _LAB_SPACES and samples.shape[2] >= 3:
        samples = np.concatenate([_lab_to_rgb(samples, kind), _as_uint16(samples[..., 3:4])], 2)
        converted = True
    elif kind not in (photometric.MINISBLACK, photometric.RGB, photometric.YCBCR):
        raise _Unsupported(f"unsupported TIFF colour space {kind}")
    samples = _unsigned_or_float(samples)
    channels = 3 if samples.shape[2] >= 3 else 1
    extras = tuple(page.extrasamples)
    keep = channels + 1 if samples.shape[2] > channels else channels
    premultiplied = keep > channels and bool(extras) and extras[0] == 1
    return samples[..., :keep], _sample_depth(samples), premultiplied, converted


def _palette_colours(colormap: Samples, samples: Samples) -> Samples:
    if colormap.ndim != 2 or colormap.shape[0] != 3:
        raise _Unsupported(f"unexpected colour map of shape {colormap.shape}")
    indices = np.clip(samples[..., 0], 0, colormap.shape[1] - 1)
    rgb = np.moveaxis(colormap[:, indices], 0, -1)
    for scale in (257, 256):  # 8-bit palettes, stored as v * 257 or as v << 8
        if not np.any(rgb % scale):
            return (rgb // scale).astype(np.uint8)
    return rgb.astype(np.uint16)


def _lab_to_rgb(samples: Samples, kind: int) -> Samples:
    if samples.dtype.kind == "f":
        return colour.lab_to_srgb(samples[..., 0], samples[..., 1], samples[..., 2])
    bits = samples.dtype.itemsize * 8
    lightness = samples[..., 0].astype(np.float32) * np.float32(100 / (2**bits - 1))
    chroma = samples[..., 1:3]
    if kind == 9:  # ICCLAB: unsigned with an offset of half the range
        chroma = chroma.astype(np.float32) - 2 ** (bits - 1)
    elif samples.dtype.kind == "u":  # CIELAB stores signed a*, b*; tifffile reads them unsigned
        chroma = chroma.view(chroma.dtype.str.replace("u", "i"))
    scaled = chroma.astype(np.float32) / np.float32(2 ** (bits - 8))
    return colour.lab_to_srgb(lightness, scaled[..., 0], scaled[..., 1])


def _as_uint16(samples: Samples) -> Samples:
    """Samples of any type as 16-bit ones (alpha beside the 16-bit sRGB of a CIELab TIFF)."""
    if samples.dtype == np.uint8:
        return samples.astype(np.uint16) * np.uint16(257)
    values = _unsigned_or_float(samples)
    if values.dtype == np.uint16:
        return values
    return np.asarray(np.rint(np.clip(values, 0.0, 1.0) * 65535), dtype=np.uint16)


def _unsigned_or_float(samples: Samples) -> Samples:
    """Signed and 32-bit integers become float (scaled so the type's maximum is 1)."""
    if samples.dtype in (np.uint8, np.uint16, np.float32):
        return samples
    if samples.dtype.kind in "iu":
        return samples.astype(np.float32) / np.float32(np.iinfo(samples.dtype).max)
    if samples.dtype.kind == "f":
        return samples.astype(np.float32)
    raise _Unsupported(f"unsupported sample format {samples.dtype}")


def _invert(samples: Samples) -> Samples:
    if samples.dtype.kind == "f":
        return 1.0 - samples
    if samples.dtype.kind == "i":
        return -samples
    return np.iinfo(samples.dtype).max - samples


def _sample_depth(samples: Samples) -> int:
    return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(samples.dtype, 32)


# ---------------------------------------------------------------------------------------------
# Writing


def write_tiff(
    path: Path, samples: Samples, exif: PILImage.Exif, icc: bytes | None, xmp: bytes | None
) -> None:
    """Write (H, W, C) samples (C: grey, grey+alpha, RGB, RGBA) with their metadata."""
    big = samples.nbytes > _CLASSIC_LIMIT
    pointers = [] if big else [tag for tag in _POINTER_STAND_INS if exiflib.sub_ifd(exif, tag)]
    extratags: list[tuple[int, str, int, Any, bool]] = [
        (tag, "s", 0, str(exif[tag]).encode(), True) for tag in _TEXT_TAGS if tag in exif
    ]
    if xmp:
        extratags.append((700, "B", len(xmp), xmp, True))
    extratags += [(_POINTER_STAND_INS[tag], "I", 1, 0, True) for tag in pointers]
    description = exif.get(exiflib.IMAGE_DESCRIPTION)
    channels = samples.shape[2]
    tifffile.imwrite(
        path,
        samples[..., 0] if channels == 1 else samples,
        photometric="rgb" if channels >= 3 else "minisblack",
        extrasamples=("unassalpha",) if channels in (2, 4) else None,
        compression="zlib",
        predictor=True,
        metadata=None,
        description=str(description).encode() if description else None,
        software=str(exif.get(exiflib.SOFTWARE, exiflib.STUDIO)).encode(),
        iccprofile=icc,
        **_resolution(exif),
        extratags=extratags,
        byteorder="<",
        bigtiff=big,
    )
    if pointers:
        _attach_sub_ifds(path, exif, pointers)


def _resolution(exif: PILImage.Exif) -> dict[str, Any]:
    """tifffile's resolution arguments from the EXIF's, when it has usable ones."""
    with contextlib.suppress(KeyError, TypeError, ValueError, ZeroDivisionError):
        resolution = (float(exif[0x011A]), float(exif[0x011B]))
        return {"resolution": resolution, "resolutionunit": int(exif.get(0x0128, 2))}
    return {}


def _attach_sub_ifds(path: Path, exif: PILImage.Exif, tags: list[int]) -> None:
    """Append the EXIF/GPS IFDs to a written TIFF and turn the stand-in tags into pointers."""
    with tifffile.TiffFile(path) as tif:
        entries = tif.pages.first.tags
        stand_ins = [entries[_POINTER_STAND_INS[tag]] for tag in tags]
        places = {
            tag: (entry.offset, entry.valueoffset)
            for tag, entry in zip(tags, stand_ins, strict=True)
        }
    with path.open("r+b") as stream:
        for tag in tags:
            end = stream.seek(0, os.SEEK_END)
            end += stream.write(b"\x00" * (end % 2))  # IFDs start on a word boundary
            stream.write(exiflib.ifd_bytes(exiflib.sub_ifd(exif, tag), tag, end))
            entry, value = places[tag]
            stream.seek(entry)
            stream.write(struct.pack("<H", tag))
            stream.seek(value)
            stream.write(struct.pack("<I", end))
