"""What each file format is, stores and allows: suffixes, content sniffing, depths, size limits.

`check_writable` answers before any computing whether an output of a given size can be written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from studio.core.errors import BadInputError, UsageError

log = logging.getLogger("studio.core.imageio")

DEFAULT_MAX_PIXELS = 200_000_000
PathLike = str | os.PathLike[str]

RAW_EXTENSIONS = frozenset(
    {
        ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".kdc", ".mef",
        ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".rw2", ".rwl", ".sr2", ".srf",
        ".srw", ".x3f",
    }
)  # fmt: skip
FORMAT_BY_EXTENSION = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".webp": "webp",
    ".hdr": "hdr",
    ".exr": "exr",
    ".avif": "avif",
    ".jxl": "jxl",
    ".heic": "heif",
    ".heif": "heif",
    ".hif": "heif",
}
WRITABLE_EXTENSIONS = frozenset(FORMAT_BY_EXTENSION)
"""Lowercase suffixes Studio writes."""
SUPPORTED_EXTENSIONS = WRITABLE_EXTENSIONS | RAW_EXTENSIONS
"""Lowercase suffixes Studio reads (the open dialog, drag and drop and batch use this list)."""

# Sample depths each format stores; float formats store 32 (EXR also 16-bit half floats).
DEPTHS = {
    "jpeg": (8,),
    "webp": (8,),
    "png": (8, 16),
    "tiff": (8, 16, 32),
    "hdr": (32,),
    "exr": (16, 32),
    "avif": (8, 16),  # 16: the highest depth AVIF stores, 12 bits
    "heif": (8, 16),  # 16: 10-bit HEIC
    "jxl": (8, 16, 32),
}
STORED_BITS = {"avif": 12, "heif": 10}
"""Bits per sample in the file for formats whose 16-bit depth stores fewer."""
_LABELS = {
    ".jpg": ("jpeg", "JPEG"),
    ".png": ("png", "PNG"),
    ".tif": ("tiff", "TIFF"),
    ".webp": ("webp", "WebP"),
    ".exr": ("exr", "OpenEXR"),
    ".hdr": ("hdr", "Radiance HDR"),
    ".avif": ("avif", "AVIF"),
    ".jxl": ("jxl", "JPEG XL"),
    ".heic": ("heif", "HEIC"),
}
OUTPUT_FORMATS = {suffix: (label, DEPTHS[fmt]) for suffix, (fmt, label) in _LABELS.items()}
"""Each writable format once, by its usual suffix: (label, bit depths it stores), for menus."""
ALPHA_FORMATS = frozenset({"png", "tiff", "webp", "exr", "avif", "heif", "jxl"})
RGB_ONLY_FORMATS = frozenset({"webp", "hdr", "avif", "heif"})
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1")
_JXL_STARTS = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")
SNIFF_BYTES = 64
MAX_SIDE = {"jpeg": 65535, "webp": 16383, "avif": 32768, "heif": 65528}
# HEIF: the HEVC picture size is padded to 8 px (measured: 40x65528 encodes and reads back,
# 40x65529 fails in the encoder, after computing, with "SPS picture size out of range").
# libavif's default decoding limits (AVIF_DEFAULT_IMAGE_DIMENSION_LIMIT, ..._SIZE_LIMIT): an
# AVIF beyond them is written, but Pillow, imagecodecs and browsers refuse to open it.
_AVIF_MAX_PIXELS = 16384 * 16384
# x265 (pillow-heif's encoder) refuses pictures under 32 px on one side and over 4216 on the
# other (measured: 16x4216 encodes, 16x4217 and 1x8000 do not; 32x33000 encodes).
_HEIF_THIN, _HEIF_LONG = 32, 4216


def notice(message: str) -> None:
    """Tell the user something they should know about a file that was still read or written."""
    log.warning("%s", message)


def sniff(head: bytes) -> str | None:
    """The format of a file that starts with `head` (`SNIFF_BYTES`), or None when unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        return "hdr"
    if head.startswith(b"v/1\x01"):
        return "exr"
    if head.startswith(_JXL_STARTS):
        return "jxl"
    if head[4:8] == b"ftyp":
        brands = head[8 : 8 + max(8, int.from_bytes(head[:4], "big") - 8)]
        if b"avif" in brands or b"avis" in brands:
            return "avif"
        if any(brand in brands for brand in _HEIF_BRANDS):
            return "heif"
    return None


def pixel_limit(max_pixels: int | None = None) -> int:
    """The decompression-bomb bound: `max_pixels`, else $STUDIO_MAX_PIXELS, else 200 megapixels."""
    if max_pixels is not None:
        return max_pixels
    setting = os.environ.get("STUDIO_MAX_PIXELS", "").strip()
    if not setting:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(float(setting))
    except (ValueError, OverflowError):
        limit = 0
    if limit <= 0:
        raise UsageError(
            f"STUDIO_MAX_PIXELS must be a positive whole number of pixels, not {setting!r}"
        )
    return limit


def check_pixels(path: Path, width: int, height: int, limit: int) -> None:
    """Refuse an image with no pixels or more than `limit`, before it is decoded."""
    if width <= 0 or height <= 0:
        raise BadInputError(f"Cannot read {path}: the image has no pixels")
    if width * height > limit:
        raise BadInputError(
            f"Refusing {path}: {width}x{height} is {width * height / 1e6:.3g} megapixels, "
            f"over the limit of {limit / 1e6:.3g} (raise STUDIO_MAX_PIXELS if you trust it)"
        )


def output_format(path: PathLike) -> str:
    """The format an output path's suffix names; `UsageError` for one Studio cannot write."""
    target = Path(path)
    fmt = FORMAT_BY_EXTENSION.get(target.suffix.lower())
    if fmt is None:
        choices = ", ".join(sorted(WRITABLE_EXTENSIONS))
        raise UsageError(f"Cannot write {target.name}: use one of {choices}")
    return fmt


def output_depth(fmt: str, source: int, requested: int | None) -> int:
    """The sample depth written: `requested`, else the source's where `fmt` stores it."""
    allowed = DEPTHS[fmt]
    if requested is None:
        return 32 if fmt == "exr" else source if source in allowed else max(allowed)
    if requested not in allowed:
        options = " or ".join(str(depth) for depth in allowed)
        stored = f" ({STORED_BITS[fmt]} bits in the file)" if fmt in STORED_BITS else ""
        floats = "; float needs EXR, TIFF or JPEG XL" if requested == 32 else ""
        raise UsageError(
            f"{fmt.upper()} stores {options}-bit samples{stored}, not {requested}-bit{floats}"
        )
    return requested


def check_writable(
    path: PathLike,
    width: int,
    height: int,
    channels: int = 3,
    dtype: npt.DTypeLike = np.float32,
    bit_depth: int | None = None,
) -> None:
    """Raise `UsageError` now if a `width` x `height` result cannot be written to `path`.

    Checks the format, the requested bit depth, the format's size limits and the folder, so a
    job is refused before it computes, not after. `dtype` is the samples' type (uint8, uint16
    or float32) that sets the default depth; `channels` (1 to 4) is accepted for symmetry with
    the writer, which stores every channel count.
    """
    target = Path(path)
    fmt = output_format(target)
    if not 1 <= channels <= 4:
        raise UsageError(f"Cannot write {target.name}: {channels} channels is not an image")
    kind = np.dtype(dtype)
    source_depth = 32 if kind.kind == "f" else 8 * kind.itemsize
    output_depth(fmt, source_depth, bit_depth)
    if width <= 0 or height <= 0:
        raise UsageError(f"Cannot write {target.name}: the image would have no pixels")
    side = MAX_SIDE.get(fmt)
    if side is not None and max(width, height) > side:
        raise UsageError(
            f"{fmt.upper()} images can be at most {side} pixels a side, this one is "
            f"{width}x{height}: choose PNG or TIFF"
        )
    if fmt == "avif" and width * height > _AVIF_MAX_PIXELS:
        raise UsageError(
            f"AVIF images can have at most {_AVIF_MAX_PIXELS / 1e6:.0f} megapixels for viewers "
            f"to open them, this one is {width}x{height}: choose JPEG XL, PNG or TIFF"
        )
    if fmt == "heif" and min(width, height) < _HEIF_THIN and max(width, height) > _HEIF_LONG:
        raise UsageError(
            f"HEIC cannot store a strip as thin as {width}x{height} (the HEVC encoder refuses "
            "it): choose PNG or TIFF"
        )
    _check_folder(target)


def _check_folder(target: Path) -> None:
    if target.is_dir():
        raise BadInputError(f"Cannot write {target}: it is a folder")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BadInputError(f"Cannot write {target}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise BadInputError(f"Cannot write {target}: Permission denied")
            return
