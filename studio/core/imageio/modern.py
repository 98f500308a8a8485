"""AVIF and JPEG XL (imagecodecs; Pillow for AVIF metadata) and HEIC/HEIF (pillow-heif).

High bit depths are kept: AVIF stores up to 12 bits, HEIC 10, JPEG XL 16 and float. EXIF and
XMP travel in JPEG XL's container boxes and in HEIF's and AVIF's metadata items, the ICC
profile in HEIF and AVIF (JPEG XL keeps it in the codestream, which imagecodecs does not write).
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from studio.core.errors import BadInputError
from studio.core.imageio import avif_meta, colour, jxl_header
from studio.core.imageio.decoded import Decoded, Samples, load_exif_safely
from studio.core.imageio.formats import check_pixels, notice

_AVIF_HIGH_BITS = 12
_CICP_BT709, _CICP_SRGB = 1, 13  # nclx colour of sRGB: BT.709 primaries, the sRGB curve


def _metadata(info: Mapping[Any, Any]) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(EXIF, ICC, XMP) bytes from a Pillow or pillow-heif info dict."""
    xmp = info.get("xmp")
    return (
        info.get("exif") or None,
        info.get("icc_profile") or None,
        (xmp.encode() if isinstance(xmp, str) else xmp) or None,
    )


def _stretched(samples: Samples, top: int) -> Samples:
    """Integer samples from 0 to `top` stretched to their type's full range."""
    full = np.iinfo(samples.dtype).max
    if top >= full:
        return samples
    scaled = samples.astype(np.float32) * np.float32(full / top)
    return np.asarray(np.rint(scaled), dtype=samples.dtype)


# ---------------------------------------------------------------------------------------------
# AVIF


def _avif_bits(data: bytes) -> int:
    """Bits per channel from an AVIF's 'pixi' property (8 when absent)."""
    at = data.find(b"pixi", 0, 1 << 16)
    return int(data[at + 9]) if at >= 0 and at + 10 <= len(data) else 8


def read_avif(path: Path, limit: int) -> Decoded:
    """A still AVIF at its bit depth; of an animated one, the first frame (8-bit, by Pillow:
    imagecodecs decodes every frame at once, and corrupts its heap when asked for one)."""
    data = path.read_bytes()
    declared = avif_meta.declared_size(data)
    if declared is not None:  # before libavif: a few bytes can declare gigapixels
        check_pixels(path, *declared, limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with PILImage.open(io.BytesIO(data), formats=["AVIF"]) as picture:
                check_pixels(path, *picture.size, limit)
                exif, icc, xmp = _metadata(picture.info)
                frames = int(getattr(picture, "n_frames", 1))
                first = np.asarray(picture) if frames > 1 else None
        except UnidentifiedImageError:  # its message names a Python object
            raise BadInputError(f"Cannot read {path}: the AVIF file is damaged") from None
    if first is not None:
        notice(f"{path.name}: has {frames} frames; Studio uses the first")
        return Decoded(first, 8, load_exif_safely(exif, path), icc, xmp)
    bits = _avif_bits(data)
    samples = _stretched(np.asarray(imagecodecs.avif_decode(data)), 2**bits - 1)
    return Decoded(samples, 16 if bits > 8 else 8, load_exif_safely(exif, path), icc, xmp)


def write_avif(
    path: Path, samples: Samples, quality: int, metadata: dict[str, Any], name: str = ""
) -> None:
    """8-bit through Pillow, 16-bit sources as 12-bit AVIF (imagecodecs, then the metadata
    added to its boxes); both with EXIF, ICC and XMP, and tagged sRGB when no profile is given.
    `name` is the file's own name for a notice, where `path` is a temporary one."""
    if samples.dtype == np.uint8:
        picture = PILImage.fromarray(samples)
        options = {"quality": quality, "subsampling": "4:4:4" if quality >= 90 else "4:2:0"}
        picture.save(path, "AVIF", **options, **metadata)
        return
    twelve = np.right_shift(samples, 16 - _AVIF_HIGH_BITS)
    tagged = bool(metadata.get("icc_profile"))  # a profile says it all, else sRGB is named
    encoded = bytes(
        imagecodecs.avif_encode(
            twelve,
            level=quality,
            bitspersample=_AVIF_HIGH_BITS,
            primaries=None if tagged else _CICP_BT709,
            transfer=None if tagged else _CICP_SRGB,
        )
    )
    exif = metadata.get("exif", b"").removeprefix(b"Exif\x00\x00") or None
    try:
        edited = avif_meta.with_metadata(
            encoded, metadata.get("icc_profile"), exif, metadata.get("xmp")
        )
        if not _avif_parses(edited):  # libavif checks each item (e.g. the EXIF's TIFF header)
            raise ValueError("libavif refuses the metadata")
        encoded = edited
    except ValueError:
        notice(f"{name or path.name}: Studio cannot add this EXIF, ICC and XMP to a 12-bit "
               "AVIF, which is written without them; write 8-bit AVIF (--bit-depth 8), HEIC, "
               "JPEG XL or TIFF to keep them")  # fmt: skip
    path.write_bytes(encoded)


def _avif_parses(data: bytes) -> bool:
    """Whether libavif (through Pillow) reads the structure and metadata of an AVIF file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(io.BytesIO(data), formats=["AVIF"]):
                return True
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# JPEG XL


def read_jxl(path: Path, limit: int) -> Decoded:
    """JPEG XL; integer samples stretched to their type's range, linear ones sRGB-encoded."""
    data = path.read_bytes()
    size = jxl_header.jxl_size(data)
    if size is None:
        raise BadInputError(f"Cannot read {path}: the JPEG XL header is damaged or incomplete")
    check_pixels(path, *size, limit)  # before decoding: a few bytes can declare gigapixels
    if jxl_header.jxl_animated(data):
        notice(f"{path.name}: is animated; Studio uses the first frame")
    samples = np.asarray(imagecodecs.jpegxl_decode(data, index=0))  # one frame, never all
    exif = xmp = None
    if data.startswith(jxl_header.SIGNATURE):
        found = jxl_header.boxes(data)
        exif = found[b"Exif"][4:] if len(found.get(b"Exif", b"")) > 4 else None  # after offset
        xmp = found.get(b"xml ") or None
    header = jxl_header.jxl_samples(data)
    if samples.dtype.kind == "f":
        samples, depth = samples.astype(np.float32), 32
    else:
        top = 2 ** ((header.bits if header and header.bits else 0) or 8 * samples.itemsize) - 1
        if header is not None and header.linear:
            samples = _encoded(samples, top)
        else:
            samples = _stretched(samples, top)
        depth = 8 if samples.dtype == np.uint8 else 16
    return Decoded(samples, depth, load_exif_safely(exif, path), None, xmp)


def _colour_only(samples: Samples, convert: Callable[[Samples], Samples]) -> Samples:
    """`convert` applied to the colour channels of (H, W[, C]) samples; alpha kept."""
    if samples.ndim == 2:
        return convert(samples)
    channels = 3 if samples.shape[2] >= 3 else 1
    out = samples.copy()
    out[..., :channels] = convert(samples[..., :channels])
    return out


def _encoded(samples: Samples, top: int) -> Samples:
    """Linear integer samples (0 to `top`) as sRGB-encoded 16-bit samples; alpha stays linear."""
    encoded = _to_uint16(colour.srgb_encode(samples.astype(np.float32) / np.float32(top)))
    if samples.ndim == 2:
        return encoded
    out = _stretched(samples.astype(np.uint16), top)
    channels = 3 if samples.shape[2] >= 3 else 1
    out[..., :channels] = encoded[..., :channels]
    return out


def _to_uint16(values: Samples) -> Samples:
    return np.asarray(np.rint(np.clip(values, 0.0, 1.0) * 65535), dtype=np.uint16)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def write_jxl(path: Path, samples: Samples, quality: int, metadata: dict[str, Any]) -> None:
    """Lossless at quality 100; EXIF and XMP in container boxes. The ICC profile is not kept.

    imagecodecs marks 16-bit JPEG XL as linear light, so 16-bit samples are stored linear.
    """
    options: dict[str, Any] = {"lossless": True} if quality == 100 else {"level": quality}
    if samples.dtype == np.uint16:
        samples = _colour_only(samples, lambda v: _to_uint16(colour.srgb_decode(v / 65535)))
    encoded = bytes(imagecodecs.jpegxl_encode(samples, usecontainer=True, **options))
    extra = b""
    if metadata.get("exif"):
        extra += _box(b"Exif", b"\x00" * 4 + metadata["exif"].removeprefix(b"Exif\x00\x00"))
    if metadata.get("xmp"):
        extra += _box(b"xml ", metadata["xmp"])
    after_type = len(jxl_header.SIGNATURE) + struct.unpack(">I", encoded[12:16])[0]  # past ftyp
    path.write_bytes(encoded[:after_type] + extra + encoded[after_type:])


# ---------------------------------------------------------------------------------------------
# HEIC / HEIF


def read_heif(path: Path, limit: int) -> Decoded:
    import pillow_heif  # here, not at the top: loads only when a HEIF is used

    declared = avif_meta.declared_size(path.read_bytes())
    if declared is not None:  # libheif may report the coded size instead
        check_pixels(path, *declared, limit)
    heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=False)
    width, height = heif.size
    check_pixels(path, int(width), int(height), limit)
    if len(heif) > 1:
        notice(f"{path.name}: holds {len(heif)} pictures; Studio uses the primary one")
    bits = int(heif.info.get("bit_depth", 8))
    samples = np.asarray(heif)
    if samples.dtype == np.uint16:  # pillow-heif returns high bits, e.g. 10-bit values << 6
        samples = _stretched(np.right_shift(samples, 16 - bits), 2**bits - 1)
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
