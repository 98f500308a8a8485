"""One decoder per format: samples and metadata as the file stores them, bounded before decoding."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import OpenEXR
import tifffile
from PIL import Image as PILImage

from studio.core import exif as exiflib
from studio.core.errors import BadInputError
from studio.core.imageio import colour, modern
from studio.core.imageio.decoded import Decoded, Samples, load_exif_safely
from studio.core.imageio.exr_meta import exif_from_exr
from studio.core.imageio.formats import check_pixels, notice
from studio.core.imageio.tiff import read_tiff

_DNG_VERSION = 50706
_LINEAR_CURVE = (1.0, 1.0)  # LibRaw's (power, toe slope): no tone curve at all
# Studio bounds pixels itself (`pixel_limit`), before decoding and with a limit users can raise.
PILImage.MAX_IMAGE_PIXELS = None


def read_pillow(path: Path, limit: int, fmt: str) -> Decoded:
    """JPEG, PNG and WebP (and TIFFs tifffile cannot decode) through Pillow."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Invalid APNG": the first frame is still read
        return _read_pillow_quietly(path, limit, fmt)


def _read_pillow_quietly(path: Path, limit: int, fmt: str) -> Decoded:
    with PILImage.open(path, formats=[fmt.upper()]) as picture:
        check_pixels(path, *picture.size, limit)
        info = picture.info
        exif = load_exif_safely(info.get("exif"), path)
        icc: bytes | None = info.get("icc_profile") or None
        xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
        frames = int(getattr(picture, "n_frames", 1))
        if frames > 1:
            notice(f"{path.name}: has {frames} frames; Studio uses the first")
        samples = _png_16bit(path) if fmt == "png" and _is_16bit_png(path) else None
        if samples is None:
            picture.load()
            samples, icc = _pillow_samples(picture, icc)
    depth = 16 if samples.dtype == np.uint16 else 8
    xmp_bytes = xmp.encode() if isinstance(xmp, str) else xmp
    return Decoded(samples, depth, exif, icc, xmp_bytes or None)


def _is_16bit_png(path: Path) -> bool:
    with path.open("rb") as stream:
        header = stream.read(8 + 8 + 13)
    return len(header) == 29 and header[12:16] == b"IHDR" and header[24] == 16


def _png_16bit(path: Path) -> Samples | None:
    """16-bit PNG samples through libpng (Pillow reduces 16-bit colour to 8 bits)."""
    try:
        return np.asarray(imagecodecs.png_decode(path.read_bytes()))
    except imagecodecs.PngError:
        return None  # Pillow reads what libpng refuses, if only at 8 bits


# Pillow's integer and float modes, read as float with the type's maximum at 1.
_INTEGER_SCALE = {
    "F": np.float32(1),
    "I": np.float32(2**31 - 1),
    "I;16B": np.float32(65535),
    "I;16L": np.float32(65535),
    "I;16S": np.float32(32767),
    "I;16BS": np.float32(32767),
    "I;16LS": np.float32(32767),
}


def _pillow_samples(picture: PILImage.Image, icc: bytes | None) -> tuple[Samples, bytes | None]:
    if picture.mode in ("L", "LA", "RGB", "RGBA", "I;16"):
        return np.asarray(picture), icc
    if picture.mode == "CMYK":
        return colour.cmyk_picture_to_rgb(picture, icc)
    if picture.mode in ("1", "P") and "transparency" not in picture.info:
        return np.asarray(picture.convert("L" if picture.mode == "1" else "RGB")), icc
    if picture.mode in _INTEGER_SCALE:
        return np.asarray(picture, dtype=np.float32) / _INTEGER_SCALE[picture.mode], icc
    if picture.mode == "LAB":
        lab = np.asarray(picture).astype(np.float32)
        lightness, a, b = lab[..., 0] * (100 / 255), lab[..., 1] - 128, lab[..., 2] - 128
        return colour.lab_to_srgb(lightness, a, b), colour.srgb_profile()
    transparent = "A" in picture.mode or "a" in picture.mode or "transparency" in picture.info
    return np.asarray(picture.convert("RGBA" if transparent else "RGB")), icc


def read_hdr(path: Path, limit: int) -> Decoded:
    with path.open("rb") as stream:
        head = stream.read(65536)
    width, height = _rgbe_size(head, path)
    check_pixels(path, width, height, limit)
    samples = np.asarray(imagecodecs.rgbe_decode(path.read_bytes()), dtype=np.float32)
    return Decoded(samples, 32)


def _rgbe_size(head: bytes, path: Path) -> tuple[int, int]:
    """(width, height) from a Radiance header's resolution line, e.g. ``-Y 480 +X 640``."""
    _, blank, rest = head.partition(b"\n\n")
    fields = rest.split(b"\n", 1)[0].split()
    if not blank or len(fields) != 4:
        raise BadInputError(f"Cannot read {path}: the Radiance HDR header is incomplete")
    if fields[0] != b"-Y" or fields[2] != b"+X":
        raise BadInputError(f"Cannot read {path}: unsupported Radiance HDR pixel order")
    return int(fields[3]), int(fields[1])


def read_exr(path: Path, limit: int) -> Decoded:
    with OpenEXR.File(str(path), header_only=True) as exr:
        header = dict(exr.header())  # the file's own dict is emptied on closing
    (x0, y0), (x1, y1) = header["dataWindow"]
    check_pixels(path, int(x1) - int(x0) + 1, int(y1) - int(y0) + 1, limit)
    with OpenEXR.File(str(path), separate_channels=True) as exr:
        channels = {name: np.asarray(ch.pixels) for name, ch in exr.channels().items()}
    samples = _exr_samples(channels, path).astype(np.float32)
    return Decoded(samples, 32, exif_from_exr(header))


def _exr_samples(channels: dict[str, Samples], path: Path) -> Samples:
    """Stack R, G, B (or Y) and A of the first layer (unlayered channels first)."""
    names = sorted(channels, key=lambda name: ("." in name, name))
    layer = names[0].rpartition(".")[0] if names else ""
    by_role = {
        name.rpartition(".")[2]: channels[name]
        for name in names
        if name.rpartition(".")[0] == layer
    }
    if all(role in by_role for role in "RGB"):
        planes = [by_role["R"], by_role["G"], by_role["B"]]
    elif "Y" in by_role:
        planes = [by_role["Y"]]
    elif len(by_role) == 1:
        planes = list(by_role.values())
    else:
        raise BadInputError(f"Cannot read {path}: no RGB or Y channels in the OpenEXR file")
    if "A" in by_role:
        planes.append(by_role["A"])
    return np.stack(planes, axis=-1)


def read_raw(path: Path, limit: int) -> Decoded:
    """Develop a camera RAW with the camera's white balance and colour matrix into linear
    16-bit sRGB primaries (`linear`: no tone curve; shown, filtered and written sRGB-encoded).

    No auto-brightening and no white level guessed from the data: the exposure stays as shot,
    so brackets keep their ratios and merge in linear light as they are. A truncated DNG is
    refused before LibRaw sees it (LibRaw prints to stderr); a plain TIFF with a RAW suffix
    that LibRaw does not know is read as a TIFF.
    """
    try:
        import rawpy  # here, not at the top: LibRaw loads only when a RAW is opened
    except ImportError:
        raise BadInputError(
            f"Cannot read {path}: RAW support needs rawpy, missing from this installation "
            "(pip install rawpy)"
        ) from None

    if is_dng(path) and _dng_data_end(path) > path.stat().st_size:  # else LibRaw prints
        raise BadInputError(f"Cannot read {path}: the file is truncated")
    try:
        raw = rawpy.imread(str(path))
    except rawpy.LibRawFileUnsupportedError:
        if not _is_tiff(path) or is_dng(path):
            raise
        notice(f"{path.name}: not a camera RAW that LibRaw knows; read as an ordinary TIFF")
        return read_tiff(path, limit, pillow=_PILLOW_TIFF)
    with raw:
        check_pixels(path, int(raw.sizes.width), int(raw.sizes.height), limit)
        exif = _raw_exif(path, raw)
        samples = np.asarray(
            raw.postprocess(
                output_bps=16,
                use_camera_wb=True,
                no_auto_bright=True,
                adjust_maximum_thr=0.0,  # keep the camera's white level: exposure as shot
                gamma=_LINEAR_CURVE,
                output_color=rawpy.ColorSpace.sRGB,
            )
        )
    return Decoded(samples, 16, exif, upright=True, linear=True)


def _is_tiff(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(4) in (b"II*\x00", b"MM\x00*")


def is_dng(path: Path) -> bool:
    """A TIFF whose first IFD has a DNGVersion tag: a camera RAW, whatever its suffix."""
    try:
        with tifffile.TiffFile(path) as tif:
            return _DNG_VERSION in tif.pages.first.tags
    except Exception:
        return False  # not a readable TIFF: the TIFF reader says why


def _dng_data_end(path: Path) -> int:
    """Where the last strip or tile that a DNG's IFDs (and SubIFDs) point to ends; 0 when
    tifffile cannot tell (LibRaw judges the file then)."""
    try:
        with tifffile.TiffFile(path) as tif:
            return max((end for page in tif.pages for end in _data_ends(page)), default=0)
    except Exception:
        return 0


def _data_ends(page: Any) -> Iterator[int]:
    extents = zip(page.dataoffsets, page.databytecounts, strict=True)
    yield from (offset + count for offset, count in extents)
    for sub in page.pages or ():  # SubIFDs: where a DNG keeps its full-size raw
        yield from _data_ends(sub)


def _raw_exif(path: Path, raw: Any) -> PILImage.Exif:
    """The EXIF of a TIFF-based RAW, completed with what LibRaw read of any RAW (CR3, RAF...)."""
    exif = PILImage.Exif()
    with path.open("rb") as stream:
        if stream.read(4) in (b"II*\x00", b"MM\x00*"):
            stream.seek(0)
            try:
                exif = exiflib.read_tiff_exif(stream)
            except Exception:
                notice(f"{path.name}: its EXIF metadata is unreadable; LibRaw's is used")
    capture = exif.get_ifd(exiflib.EXIF_IFD)
    other, lens = raw.other, raw.lens
    found = {
        exiflib.EXPOSURE_TIME: float(other.shutter_speed),
        exiflib.F_NUMBER: float(other.aperture),
        exiflib.ISO_SPEED: int(other.iso_speed),
        0x920A: float(other.focal_length),  # FocalLength
        0xA433: str(lens.make),  # LensMake
        0xA434: str(lens.model),  # LensModel
    }
    for tag, value in found.items():
        if value and tag not in capture:
            capture[tag] = value
    return exif


_PILLOW_TIFF = functools.partial(read_pillow, fmt="tiff")

DECODERS: dict[str, Callable[[Path, int], Decoded]] = {
    "jpeg": functools.partial(read_pillow, fmt="jpeg"),
    "png": functools.partial(read_pillow, fmt="png"),
    "webp": functools.partial(read_pillow, fmt="webp"),
    "tiff": functools.partial(read_tiff, pillow=_PILLOW_TIFF),
    "hdr": read_hdr,
    "exr": read_exr,
    "raw": read_raw,
    "avif": modern.read_avif,
    "jxl": modern.read_jxl,
    "heif": modern.read_heif,
}
