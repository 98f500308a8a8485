"""One encoder per format, each writing prepared samples and the metadata its format keeps."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import OpenEXR
from PIL import Image as PILImage

from studio.core import exif as exiflib
from studio.core.image import ImageMeta
from studio.core.imageio import modern, png_bands
from studio.core.imageio.decoded import Samples
from studio.core.imageio.exr_meta import exr_attributes, fields_left_out
from studio.core.imageio.png_bands import png_chunk
from studio.core.imageio.tiff import write_tiff

_JPEG_SEGMENT_LIMIT = 65533 - len(b"Exif\x00\x00")
_JPEG_XMP_LIMIT = 65000


@dataclass(frozen=True)
class Output:
    """Samples quantised for one format, with the metadata the format can carry."""

    colour: Samples  # (H, W, 1|3): uint8, uint16 or float32
    alpha: Samples | None  # (H, W), same dtype
    depth: int
    quality: int
    exif: PILImage.Exif
    icc: bytes | None
    meta: ImageMeta
    name: str  # the file's own name, for notices: it is written under a temporary one

    def samples(self) -> Samples:
        """(H, W, C) colour and alpha together."""
        if self.alpha is None:
            return self.colour
        return np.concatenate([self.colour, self.alpha[..., None]], axis=2)


def _squeezed(samples: Samples) -> Samples:
    return samples[..., 0] if samples.shape[2] == 1 else samples


def _write_jpeg(output: Output, path: Path) -> None:
    options: dict[str, Any] = {
        "quality": output.quality,
        "subsampling": 0 if output.quality >= 90 else 2,
    }
    exif = exiflib.fit_exif(output.exif, _JPEG_SEGMENT_LIMIT)
    if exif:
        options["exif"] = exif
    if output.icc:
        options["icc_profile"] = output.icc
    if output.meta.xmp and len(output.meta.xmp) <= _JPEG_XMP_LIMIT:
        options["xmp"] = output.meta.xmp
    # Encoded in memory: Pillow's JPEG encoder writes to a file descriptor in one call and
    # ignores a short write (a disk filling up), which would leave a truncated file.
    encoded = io.BytesIO()
    PILImage.fromarray(_squeezed(output.colour)).save(encoded, "JPEG", **options)
    path.write_bytes(encoded.getbuffer())


def _write_webp(output: Output, path: Path) -> None:
    options: dict[str, Any] = {"quality": output.quality, "lossless": output.quality == 100}
    exif = exiflib.exif_bytes(output.exif)
    if exif:
        options["exif"] = exif
    if output.icc:
        options["icc_profile"] = output.icc
    if output.meta.xmp:
        options["xmp"] = output.meta.xmp
    PILImage.fromarray(_squeezed(output.samples())).save(path, "WEBP", **options)


def _png_bytes(samples: Samples) -> bytes:
    """libpng's encoding, with room for the worst case of very narrow or very short images
    (imagecodecs' own estimate is too small for a picture one pixel wide)."""
    rows = samples.shape[0]
    room = samples.nbytes + samples.nbytes // 100 + 8 * rows + 2**16
    return bytes(imagecodecs.png_encode(_squeezed(samples), out=room))


def _write_png(output: Output, path: Path) -> None:
    chunks = []
    if output.icc:
        chunks.append(png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(output.icc)))
    exif = exiflib.exif_bytes(output.exif)
    if exif:
        chunks.append(png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")))
    if output.meta.xmp:
        chunks.append(png_chunk(b"iTXt", b"XML:com.adobe.xmp" + b"\x00" * 5 + output.meta.xmp))
    if output.colour.nbytes > png_bands.PNG_BANDS_ABOVE:
        png_bands.write_png_in_bands(path, output.colour, output.alpha, chunks)
        return
    encoded = _png_bytes(output.samples())
    header_end = 8 + 8 + 13 + 4  # signature, then the IHDR chunk, which must come first
    path.write_bytes(encoded[:header_end] + b"".join(chunks) + encoded[header_end:])


def _write_tiff(output: Output, path: Path) -> None:
    write_tiff(path, output.samples(), output.exif, output.icc, output.meta.xmp)


def _write_hdr(output: Output, path: Path) -> None:
    finite = np.nan_to_num(np.asarray(output.colour, dtype=np.float32), posinf=3.0e38)
    radiance = np.ascontiguousarray(np.clip(finite, 0.0, None))
    path.write_bytes(bytes(imagecodecs.rgbe_encode(radiance)))


def _write_exr(output: Output, path: Path) -> None:
    sample_type = np.float16 if output.depth == 16 else np.float32
    colour = output.colour.astype(sample_type)
    channels: dict[str, Samples] = (
        {"RGB": colour} if colour.shape[2] == 3 else {"Y": np.ascontiguousarray(colour[..., 0])}
    )
    if output.alpha is not None:
        channels["A"] = output.alpha.astype(sample_type)
    header: dict[str, Any] = {
        "compression": OpenEXR.ZIP_COMPRESSION,
        "type": OpenEXR.scanlineimage,
        **exr_attributes(output.exif),
    }
    meta = output.meta
    if meta.history:
        header["comments"] = exiflib.describe(meta.history)
    exposure = {"expTime": meta.exposure_time, "aperture": meta.f_number, "isoSpeed": meta.iso}
    header.update({name: float(value) for name, value in exposure.items() if value})
    with OpenEXR.File(header, channels) as exr:
        try:
            exr.write(str(path))
        except RuntimeError as error:  # OpenEXR reports a failed write as a RuntimeError
            raise OSError(_exr_write_reason(error)) from error


def _exr_write_reason(error: RuntimeError) -> str:
    """The system's reason from OpenEXR's 'Failed to write ... "FILE". Reason.' message."""
    text = str(error).strip()
    reason = text.rpartition('". ')[2] if '". ' in text else text
    return reason.rstrip(".") or "OpenEXR could not write the file"


def _metadata(output: Output) -> dict[str, Any]:
    """EXIF, ICC and XMP as Pillow-style save options, only those present."""
    options = {
        "exif": exiflib.exif_bytes(output.exif),
        "icc_profile": output.icc,
        "xmp": output.meta.xmp,
    }
    return {name: value for name, value in options.items() if value}


def metadata_left_out(output: Output, fmt: str) -> list[str]:
    """What of the image's EXIF, ICC profile and XMP a file of format `fmt` cannot carry."""
    if fmt == "jpeg":
        return _jpeg_left_out(output)
    if fmt == "jxl":
        return ["its ICC profile (sRGB is assumed)"] if output.icc else []
    if fmt not in ("exr", "hdr"):
        return []
    left_out = [name for name, value in (("its ICC profile", output.icc),
                                         ("its XMP", output.meta.xmp)) if value]  # fmt: skip
    if fmt == "hdr" and exiflib.exif_bytes(output.exif):
        return ["its EXIF (camera, lens, exposure, GPS, copyright)", *left_out]
    fields = fields_left_out(output.exif)
    if output.meta.history:  # Studio's steps, in the Software field, go in the comments
        fields = [name for name in fields if name != "Software"]
    if fields:
        shown = ", ".join(fields[:8]) + (f" and {len(fields) - 8} more" if len(fields) > 8 else "")
        left_out.insert(0, f"the EXIF fields {shown}")
    return left_out


def _jpeg_left_out(output: Output) -> list[str]:
    left_out = []
    whole = exiflib.exif_bytes(output.exif)
    if whole is not None and len(whole) > _JPEG_SEGMENT_LIMIT:
        fitted = exiflib.fit_exif(exiflib.load_exif(whole), _JPEG_SEGMENT_LIMIT)
        lost = "its maker note" if fitted else "its EXIF"
        left_out.append(f"{lost} ({len(whole) // 1024} KB; JPEG holds at most 64 KB)")
    if output.meta.xmp and len(output.meta.xmp) > _JPEG_XMP_LIMIT:
        left_out.append(f"its XMP ({len(output.meta.xmp) // 1024} KB; JPEG holds at most 64 KB)")
    return left_out


def _modern(
    write: Callable[[Path, Samples, int, dict[str, Any]], None],
) -> Callable[[Output, Path], None]:
    def encode(output: Output, path: Path) -> None:
        samples = np.ascontiguousarray(output.samples())
        write(path, samples, output.quality, _metadata(output))

    return encode


def _write_avif(output: Output, path: Path) -> None:
    samples = np.ascontiguousarray(output.samples())
    modern.write_avif(path, samples, output.quality, _metadata(output), output.name)


ENCODERS: dict[str, Callable[[Output, Path], None]] = {
    "jpeg": _write_jpeg,
    "png": _write_png,
    "webp": _write_webp,
    "tiff": _write_tiff,
    "hdr": _write_hdr,
    "exr": _write_exr,
    "avif": _write_avif,
    "jxl": _modern(modern.write_jxl),
    "heif": _modern(modern.write_heif),
}
