"""AVIF and JPEG XL (imagecodecs; Pillow for AVIF metadata) and HEIC/HEIF (pillow-heif).

High bit depths are kept: AVIF stores up to 12 bits, HEIC 10, JPEG XL 16 and float. EXIF and
XMP travel in JPEG XL's container boxes and in HEIF's and 8-bit AVIF's metadata items.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
from PIL import Image as PILImage

from studio.core.imageio.decoded import Decoded, Samples, load_exif_safely
from studio.core.imageio.formats import check_pixels, notice

_JXL_SIGNATURE = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
_AVIF_HIGH_BITS = 12


def _metadata(info: Mapping[Any, Any]) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(EXIF, ICC, XMP) bytes from a Pillow or pillow-heif info dict."""
    xmp = info.get("xmp")
    return (
        info.get("exif") or None,
        info.get("icc_profile") or None,
        (xmp.encode() if isinstance(xmp, str) else xmp) or None,
    )


def _stretched(samples: Samples, bits: int) -> Samples:
    """`bits`-deep samples in uint16 stretched to the full 16-bit range."""
    if samples.dtype != np.uint16 or bits >= 16:
        return samples
    scaled = samples.astype(np.float32) * np.float32(65535 / (2**bits - 1))
    return np.asarray(np.rint(scaled), dtype=np.uint16)


# ---------------------------------------------------------------------------------------------
# AVIF


def _avif_bits(data: bytes) -> int:
    """Bits per channel from an AVIF's 'pixi' property (8 when absent)."""
    at = data.find(b"pixi", 0, 1 << 16)
    return int(data[at + 9]) if at >= 0 and at + 10 <= len(data) else 8


def read_avif(path: Path, limit: int) -> Decoded:
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with PILImage.open(io.BytesIO(data), formats=["AVIF"]) as picture:
            check_pixels(path, *picture.size, limit)
            exif, icc, xmp = _metadata(picture.info)
    bits = _avif_bits(data)
    samples = _stretched(np.asarray(imagecodecs.avif_decode(data)), bits)
    return Decoded(samples, 16 if bits > 8 else 8, load_exif_safely(exif, path), icc, xmp)


def write_avif(path: Path, samples: Samples, quality: int, metadata: dict[str, Any]) -> None:
    """8-bit through Pillow with EXIF/ICC/XMP; 16-bit sources as 12-bit AVIF (no metadata)."""
    if samples.dtype == np.uint8:
        picture = PILImage.fromarray(samples)
        options = {"quality": quality, "subsampling": "4:4:4" if quality >= 90 else "4:2:0"}
        picture.save(path, "AVIF", **options, **metadata)
        return
    if metadata:
        notice(f"{path.name}: 12-bit AVIF is written without EXIF, ICC and XMP; "
               "write 8-bit AVIF (--bit-depth 8), HEIC, JPEG XL or TIFF to keep them")  # fmt: skip
    twelve = np.right_shift(samples, 16 - _AVIF_HIGH_BITS)
    encoded = imagecodecs.avif_encode(twelve, level=quality, bitspersample=_AVIF_HIGH_BITS)
    path.write_bytes(bytes(encoded))


# ---------------------------------------------------------------------------------------------
# JPEG XL


def _boxes(data: bytes) -> dict[bytes, bytes]:
    """The first box of each type in an ISO BMFF container (JPEG XL's), by type."""
    boxes: dict[bytes, bytes] = {}
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1 and at + 16 <= len(data):
            size, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        end = len(data) if size == 0 else at + size
        if end <= at:
            break
        boxes.setdefault(kind, data[at + header : end])
        at = end
    return boxes


def read_jxl(path: Path, limit: int) -> Decoded:
    data = path.read_bytes()
    samples = np.asarray(imagecodecs.jpegxl_decode(data))
    check_pixels(path, samples.shape[1], samples.shape[0], limit)
    exif = xmp = None
    if data.startswith(_JXL_SIGNATURE):
        boxes = _boxes(data)
        exif = boxes[b"Exif"][4:] if len(boxes.get(b"Exif", b"")) > 4 else None
        xmp = boxes.get(b"xml ") or None
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(samples.dtype, 32)
    samples = samples if depth != 32 else samples.astype(np.float32)
    return Decoded(samples, depth, load_exif_safely(exif, path), None, xmp)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def write_jxl(path: Path, samples: Samples, quality: int, metadata: dict[str, Any]) -> None:
    """Lossless at quality 100; EXIF and XMP in container boxes. The ICC profile is not kept."""
    options: dict[str, Any] = {"lossless": True} if quality == 100 else {"level": quality}
    if samples.dtype == np.uint16:
        options["bitspersample"] = 16
    encoded = bytes(imagecodecs.jpegxl_encode(samples, usecontainer=True, **options))
    extra = b""
    if metadata.get("exif"):
        extra += _box(b"Exif", b"\x00" * 4 + metadata["exif"].removeprefix(b"Exif\x00\x00"))
    if metadata.get("xmp"):
        extra += _box(b"xml ", metadata["xmp"])
    if metadata.get("icc_profile"):
        notice(f"{path.name}: the ICC profile is not embedded in JPEG XL (sRGB is assumed)")
    after_type = len(_JXL_SIGNATURE) + struct.unpack(">I", encoded[12:16])[0]  # past 'ftyp'
    path.write_bytes(encoded[:after_type] + extra + encoded[after_type:])


# ---------------------------------------------------------------------------------------------
# HEIC / HEIF


def read_heif(path: Path, limit: int) -> Decoded:
    import pillow_heif  # here, not at the top: loads only when a HEIF is used

    heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=False)
    width, height = heif.size
    check_pixels(path, int(width), int(height), limit)
    if len(heif) > 1:
        notice(f"{path.name}: holds {len(heif)} pictures; Studio uses the primary one")
    bits = int(heif.info.get("bit_depth", 8))
    samples = np.asarray(heif)
    if samples.dtype == np.uint16:  # pillow-heif returns high bits, e.g. 10-bit values << 6
        samples = _stretched(np.right_shift(samples, 16 - bits), bits)
    exif, icc, xmp = _metadata(heif.info)
    return Decoded(samples, 16 if bits > 8 else 8, load_exif_safely(exif, path), icc, xmp)


def write_heif(path: Path, samples: Samples, quality: int, metadata: dict[str, Any]) -> None:
    """8-bit or (from 16-bit sources) 10-bit HEIC with EXIF, ICC and XMP."""
    import pillow_heif  # here, not at the top: loads only when a HEIF is used

    channels = samples.shape[2]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels] + (";16" if samples.dtype == np.uint16 else "")
    flat = np.ascontiguousarray(samples[..., 0] if channels == 1 else samples)
    size = (samples.shape[1], samples.shape[0])
    heif = pillow_heif.from_bytes(mode=mode, size=size, data=flat.tobytes())
    options = {"quality": quality, "chroma": 444 if quality >= 90 else 420}
    heif.save(str(path), format="HEIF", **options, **metadata)
