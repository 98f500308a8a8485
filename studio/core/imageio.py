"""Image I/O that loses nothing: bit depth, alpha, EXIF, ICC profile and XMP survive a round trip.

Reads JPEG, PNG (8/16-bit), TIFF (8/16-bit, float), WebP, Radiance HDR, OpenEXR and, with the
``raw`` extra (rawpy), camera RAW files; the format is sniffed from the content, not the name.
Pictures are turned upright by their EXIF orientation on reading. Writes every format but RAW,
through a temporary file in the target folder that replaces the target only once complete.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import logging
import os
import secrets
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt
import OpenEXR
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms

import studio
from studio.core import exif as exiflib
from studio.core.errors import BadInputError, StudioError, UsageError
from studio.core.image import FloatArray, Image, ImageMeta, as_rgb, luminance
from studio.core.paths import require_regular_file

log = logging.getLogger(__name__)

# Studio bounds pixels itself (`pixel_limit`), before decoding and with a limit users can raise.
PILImage.MAX_IMAGE_PIXELS = None

DEFAULT_MAX_PIXELS = 200_000_000
PathLike = str | os.PathLike[str]
Samples = npt.NDArray[Any]

RAW_EXTENSIONS = frozenset(
    {
        ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".kdc", ".mef",
        ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".rw2", ".rwl", ".sr2", ".srf",
        ".srw", ".x3f",
    }
)  # fmt: skip
_FORMAT_BY_EXTENSION = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".webp": "webp",
    ".hdr": "hdr",
    ".exr": "exr",
}
WRITABLE_EXTENSIONS = frozenset(_FORMAT_BY_EXTENSION)
SUPPORTED_EXTENSIONS = WRITABLE_EXTENSIONS | (
    RAW_EXTENSIONS if importlib.util.find_spec("rawpy") else frozenset()
)
"""Lowercase suffixes Studio reads; RAW suffixes only when the ``raw`` extra is installed."""

# Sample depths each format stores; float formats store 32 (EXR also 16-bit half floats).
_DEPTHS = {
    "jpeg": (8,),
    "webp": (8,),
    "png": (8, 16),
    "tiff": (8, 16, 32),
    "hdr": (32,),
    "exr": (16, 32),
}
_ALPHA_FORMATS = frozenset({"png", "tiff", "webp", "exr"})
_MAX_SIDE = {"jpeg": 65535, "webp": 16383}
_JPEG_SEGMENT_LIMIT = 65533 - len(b"Exif\x00\x00")
_JPEG_XMP_LIMIT = 65000
_TIFF_TEXT_TAGS = (0x010F, 0x0110, 0x0132, 0x013B, 0x013C, 0x8298)
# tifffile will not write the EXIF/GPS pointer tags, so the writer stores the pointer under the
# preceding (unused) code and renames it afterwards; the IFD stays sorted by code.
_TIFF_POINTER_STAND_INS = {
    exiflib.EXIF_IFD: exiflib.EXIF_IFD - 1,
    exiflib.GPS_IFD: exiflib.GPS_IFD - 1,
}
_CLASSIC_TIFF_LIMIT = 2**32 - 2**25


@dataclass
class _Decoded:
    """What a format reader hands back before scaling, orientation and metadata packing."""

    samples: Samples  # (H, W) or (H, W, C), C in 1..4: grey, grey+alpha, RGB, RGBA
    bit_depth: int
    exif: PILImage.Exif = field(default_factory=PILImage.Exif)
    icc: bytes | None = None
    xmp: bytes | None = None
    upright: bool = False  # the decoder already applied the orientation
    premultiplied: bool = False


# ---------------------------------------------------------------------------------------------
# Reading


def pixel_limit(max_pixels: int | None = None) -> int:
    """The decompression-bomb bound: `max_pixels`, else $STUDIO_MAX_PIXELS, else 200 megapixels."""
    if max_pixels is not None:
        return max_pixels
    setting = os.environ.get("STUDIO_MAX_PIXELS", "").strip()
    if not setting:
        return DEFAULT_MAX_PIXELS
    try:
        return int(float(setting))
    except ValueError:
        raise UsageError(f"STUDIO_MAX_PIXELS must be a number of pixels, not {setting!r}") from None


def read_image(path: PathLike, max_pixels: int | None = None) -> Image:
    """Read an image file as float32 pixels with its bit depth, alpha, EXIF, ICC and XMP.

    Raises `BadInputError` (naming the file) for anything that cannot be read, and for images
    with more than `pixel_limit(max_pixels)` pixels, before decoding them.
    """
    source = Path(path)
    limit = pixel_limit(max_pixels)
    require_regular_file(source)
    fmt = _detect_format(source)
    try:
        decoded = _READERS[fmt](source, limit)
        return _to_image(decoded, source, fmt)
    except StudioError:
        raise
    except MemoryError:
        raise BadInputError(f"Cannot read {source}: not enough memory for this image") from None
    except Exception as error:
        raise BadInputError(f"Cannot read {source}: {_reason(error)}") from error


def _reason(error: BaseException) -> str:
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _detect_format(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            head = stream.read(16)
    except OSError as error:
        raise BadInputError(f"Cannot read {path}: {_reason(error)}") from error
    fmt = _sniff(head)
    if path.suffix.lower() in RAW_EXTENSIONS and fmt in (None, "tiff"):
        return "raw"
    if fmt is None:
        what = "the file is empty" if not head else "not a supported image file"
        raise BadInputError(f"Cannot read {path}: {what}")
    return fmt


def _sniff(head: bytes) -> str | None:
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
    return None


def _check_pixels(path: Path, width: int, height: int, limit: int) -> None:
    if width <= 0 or height <= 0:
        raise BadInputError(f"Cannot read {path}: the image has no pixels")
    if width * height > limit:
        raise BadInputError(
            f"Refusing {path}: {width}x{height} is {width * height / 1e6:.3g} megapixels, "
            f"over the limit of {limit / 1e6:.3g} (raise STUDIO_MAX_PIXELS if you trust it)"
        )


def _metadata_safely(read: Callable[[], PILImage.Exif], path: Path) -> PILImage.Exif:
    """Broken metadata must not stop a picture from opening: log it and carry on without."""
    try:
        return read()
    except Exception as error:
        log.warning("Ignoring unreadable EXIF in %s: %s", path, _reason(error))
        return PILImage.Exif()


def _read_pillow(path: Path, limit: int, fmt: str) -> _Decoded:
    with PILImage.open(path, formats=[fmt.upper()]) as picture:
        _check_pixels(path, *picture.size, limit)
        info = picture.info
        exif = _metadata_safely(lambda: exiflib.load_exif(info.get("exif")), path)
        icc: bytes | None = info.get("icc_profile") or None
        xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
        if fmt == "png":  # Pillow reduces 16-bit colour PNGs to 8 bits; libpng does not
            samples = np.asarray(imagecodecs.png_decode(path.read_bytes()))
        else:
            picture.load()
            samples, icc = _pillow_samples(picture, icc)
    depth = 16 if samples.dtype == np.uint16 else 8
    xmp_bytes = xmp.encode() if isinstance(xmp, str) else xmp
    return _Decoded(samples, depth, exif, icc, xmp_bytes or None)


def _pillow_samples(picture: PILImage.Image, icc: bytes | None) -> tuple[Samples, bytes | None]:
    if picture.mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(picture), icc
    if picture.mode == "CMYK":
        return _cmyk_to_rgb(picture, icc)
    if picture.mode == "1":
        return np.asarray(picture.convert("L")), icc
    transparent = "A" in picture.mode or "a" in picture.mode or "transparency" in picture.info
    return np.asarray(picture.convert("RGBA" if transparent else "RGB")), icc


@functools.cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile (what CMYK pictures are converted into)."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _cmyk_to_rgb(picture: PILImage.Image, icc: bytes | None) -> tuple[Samples, bytes | None]:
    """Colour-manage CMYK into sRGB through its profile; plain arithmetic when there is none."""
    if icc:
        with contextlib.suppress(ImageCms.PyCMSError, OSError):
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            rgb = ImageCms.profileToProfile(picture, source, target, outputMode="RGB")
            if rgb is not None:
                return np.asarray(rgb), srgb_profile()
    return np.asarray(picture.convert("RGB")), None


def _read_tiff(path: Path, limit: int) -> _Decoded:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        _check_pixels(path, page.imagewidth, page.imagelength, limit)
        samples = np.asarray(page.asarray())
        if page.axes.startswith("S"):
            samples = np.moveaxis(samples, 0, -1)
        samples, depth, premultiplied = _tiff_colour(page, samples, path)
        tags = page.tags
        icc = _tag_bytes(tags.get(34675))
        xmp = _tag_bytes(tags.get(700))
    exif = _metadata_safely(lambda: _tiff_exif(path), path)
    return _Decoded(samples, depth, exif, icc, xmp, premultiplied=premultiplied)


def _tiff_exif(path: Path) -> PILImage.Exif:
    with path.open("rb") as stream:
        return exiflib.read_tiff_exif(stream)


def _tag_bytes(tag: tifffile.TiffTag | None) -> bytes | None:
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, str):
        return value.encode()
    return bytes(np.asarray(value, dtype=np.uint8)) if not isinstance(value, bytes) else value


def _tiff_colour(
    page: tifffile.TiffPage, samples: Samples, path: Path
) -> tuple[Samples, int, bool]:
    """Samples as grey/RGB (+ alpha), their bit depth, and whether alpha is premultiplied."""
    photometric = tifffile.PHOTOMETRIC
    kind = page.photometric
    if samples.ndim == 2:
        samples = samples[..., None]
    if kind == photometric.PALETTE:
        samples = np.moveaxis(np.asarray(page.colormap)[:, samples[..., 0]], 0, -1)
        for scale in (257, 256):  # 8-bit palettes, stored as v * 257 or as v << 8
            if not np.any(samples % scale):
                samples = (samples // scale).astype(np.uint8)
                break
    elif kind == photometric.SEPARATED and samples.shape[2] >= 4:
        samples = _cmyk_arithmetic(samples[..., :4])
    elif kind == photometric.MINISWHITE:
        samples = _invert(samples)
    elif kind not in (photometric.MINISBLACK, photometric.RGB, photometric.YCBCR):
        raise BadInputError(f"Cannot read {path}: unsupported TIFF colour space {kind}")
    colour = 3 if samples.shape[2] >= 3 else 1
    extras = tuple(page.extrasamples)
    keep = colour + 1 if samples.shape[2] > colour else colour
    premultiplied = keep > colour and bool(extras) and extras[0] == 1
    return samples[..., :keep], _sample_depth(samples, path), premultiplied


def _invert(samples: Samples) -> Samples:
    if samples.dtype.kind == "f":
        return 1.0 - samples
    return np.iinfo(samples.dtype).max - samples


def _cmyk_arithmetic(cmyk: Samples) -> Samples:
    scale = 1.0 if cmyk.dtype.kind == "f" else float(np.iinfo(cmyk.dtype).max)
    ink = cmyk.astype(np.float32) / scale
    rgb = (1.0 - ink[..., :3]) * (1.0 - ink[..., 3:4])
    return (rgb * scale).round().astype(cmyk.dtype) if scale != 1.0 else rgb


def _sample_depth(samples: Samples, path: Path) -> int:
    if samples.dtype in (np.uint8, np.bool_):
        return 8
    if samples.dtype == np.uint16:
        return 16
    if samples.dtype.kind == "f":
        return 32
    raise BadInputError(f"Cannot read {path}: unsupported sample format {samples.dtype}")


def _read_hdr(path: Path, limit: int) -> _Decoded:
    with path.open("rb") as stream:
        head = stream.read(65536)
    width, height = _rgbe_size(head, path)
    _check_pixels(path, width, height, limit)
    samples = np.asarray(imagecodecs.rgbe_decode(path.read_bytes()), dtype=np.float32)
    return _Decoded(samples, 32)


def _rgbe_size(head: bytes, path: Path) -> tuple[int, int]:
    """(width, height) from a Radiance header's resolution line, e.g. ``-Y 480 +X 640``."""
    _, blank, rest = head.partition(b"\n\n")
    fields = rest.split(b"\n", 1)[0].split()
    if not blank or len(fields) != 4:
        raise BadInputError(f"Cannot read {path}: the Radiance HDR header is incomplete")
    if fields[0] != b"-Y" or fields[2] != b"+X":
        raise BadInputError(f"Cannot read {path}: unsupported Radiance HDR pixel order")
    return int(fields[3]), int(fields[1])


_EXR_EXPOSURE = (
    ("expTime", exiflib.EXPOSURE_TIME),
    ("aperture", exiflib.F_NUMBER),
    ("isoSpeed", exiflib.ISO_SPEED),
)


def _read_exr(path: Path, limit: int) -> _Decoded:
    with OpenEXR.File(str(path), header_only=True) as exr:
        header = dict(exr.header())  # the file's own dict is emptied on closing
    (x0, y0), (x1, y1) = header["dataWindow"]
    _check_pixels(path, int(x1) - int(x0) + 1, int(y1) - int(y0) + 1, limit)
    with OpenEXR.File(str(path), separate_channels=True) as exr:
        channels = {name: np.asarray(ch.pixels) for name, ch in exr.channels().items()}
    exif = PILImage.Exif()
    for attribute, tag in _EXR_EXPOSURE:
        if isinstance(header.get(attribute), int | float) and header[attribute] > 0:
            exif.get_ifd(exiflib.EXIF_IFD)[tag] = float(header[attribute])
    return _Decoded(_exr_samples(channels, path).astype(np.float32), 32, exif)


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


def _read_raw(path: Path, limit: int) -> _Decoded:
    try:
        rawpy: Any = importlib.import_module("rawpy")
    except ImportError:
        raise BadInputError(
            f"Cannot read {path}: RAW support needs the 'raw' extra: pip install studio[raw]"
        ) from None
    with rawpy.imread(str(path)) as raw:
        _check_pixels(path, int(raw.sizes.width), int(raw.sizes.height), limit)
        samples = np.asarray(raw.postprocess(output_bps=16, use_camera_wb=True))
    exif = _metadata_safely(lambda: _tiff_exif(path), path)
    return _Decoded(samples, 16, exif, upright=True)


_READERS: dict[str, Callable[[Path, int], _Decoded]] = {
    "jpeg": functools.partial(_read_pillow, fmt="jpeg"),
    "png": functools.partial(_read_pillow, fmt="png"),
    "webp": functools.partial(_read_pillow, fmt="webp"),
    "tiff": _read_tiff,
    "hdr": _read_hdr,
    "exr": _read_exr,
    "raw": _read_raw,
}


def _to_float(samples: Samples, path: Path) -> FloatArray:
    if samples.dtype == np.uint8:
        return samples.astype(np.float32) / np.float32(255)
    if samples.dtype == np.uint16:
        return samples.astype(np.float32) / np.float32(65535)
    if samples.dtype == np.bool_ or samples.dtype.kind == "f":
        return samples.astype(np.float32)
    raise BadInputError(f"Cannot read {path}: unsupported sample format {samples.dtype}")


def _to_image(decoded: _Decoded, path: Path, fmt: str) -> Image:
    samples = decoded.samples if decoded.samples.ndim == 3 else decoded.samples[..., None]
    if samples.size == 0:
        raise BadInputError(f"Cannot read {path}: the image has no pixels")
    values = _to_float(samples, path)
    colour = 3 if values.shape[2] >= 3 else 1
    pixels = values[..., :colour]
    alpha = values[..., colour] if values.shape[2] > colour else None
    if alpha is not None and decoded.premultiplied:
        pixels = np.where(alpha[..., None] > 0, pixels / np.maximum(alpha[..., None], 1e-12), 0)
    exif = decoded.exif
    if not decoded.upright:
        turn = exiflib.orientation(exif)
        pixels = np.asarray(exiflib.apply_orientation(pixels, turn), dtype=np.float32)
        if alpha is not None:
            alpha = np.asarray(exiflib.apply_orientation(alpha, turn), dtype=np.float32)
    if exiflib.ORIENTATION in exif:
        exif[exiflib.ORIENTATION] = 1
    xmp = None if decoded.xmp is None else exiflib.upright_xmp(decoded.xmp)
    exposure_time, f_number, iso = exiflib.exposure(exif)
    meta = ImageMeta(
        bit_depth=decoded.bit_depth,
        source_format=fmt,
        source_path=path,
        exif=exiflib.exif_bytes(exif),
        icc_profile=decoded.icc,
        xmp=xmp,
        exposure_time=exposure_time,
        f_number=f_number,
        iso=iso,
    )
    return Image(
        np.ascontiguousarray(pixels, dtype=np.float32),
        meta,
        None if alpha is None else np.ascontiguousarray(alpha, dtype=np.float32),
    )


# ---------------------------------------------------------------------------------------------
# Masks and hints


def read_mask(path: PathLike, shape: tuple[int, int]) -> FloatArray:
    """A (H, W) mask in [0, 1] where white (opaque) is 1, from a grey, RGB or RGBA file."""
    image = read_image(path)
    _check_shape("Mask", image, shape, Path(path))
    values = luminance(image.pixels)
    if image.alpha is not None:
        values = values * image.alpha
    return np.clip(np.nan_to_num(values), 0.0, 1.0).astype(np.float32)


def read_hints(path: PathLike, shape: tuple[int, int]) -> FloatArray:
    """(H, W, 4) RGBA colour hints in [0, 1]; opaque pixels are hints, transparent ones are not."""
    image = read_image(path)
    _check_shape("Hints image", image, shape, Path(path))
    rgb = as_rgb(image.pixels)
    alpha = image.alpha if image.alpha is not None else np.ones(rgb.shape[:2], np.float32)
    hints = np.concatenate([rgb, alpha[..., None]], axis=2)
    return np.asarray(np.clip(np.nan_to_num(hints), 0.0, 1.0), dtype=np.float32)


def _check_shape(what: str, image: Image, shape: tuple[int, int], path: Path) -> None:
    height, width = shape
    if (image.height, image.width) != (height, width):
        raise BadInputError(
            f"{what} is {image.width}x{image.height} but the image is {width}x{height}: {path}"
        )


def is_image_file(path: PathLike) -> bool:
    """A visible file whose suffix Studio reads (hidden files such as ``._IMG.jpg`` are not)."""
    candidate = Path(path)
    return (
        candidate.suffix.lower() in SUPPORTED_EXTENSIONS
        and not candidate.name.startswith(".")
        and candidate.is_file()
    )


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class _Output:
    """Samples quantised for one format, with the metadata the format can carry."""

    colour: Samples  # (H, W, 1|3): uint8, uint16 or float32
    alpha: Samples | None  # (H, W), same dtype
    depth: int
    quality: int
    exif: PILImage.Exif
    icc: bytes | None
    meta: ImageMeta


def write_image(
    image: Image,
    path: PathLike,
    *,
    bit_depth: int | None = None,
    quality: int = 95,
    inputs: Iterable[PathLike] = (),
) -> Path:
    """Write `image` in the format its suffix names; return the path written.

    The bit depth defaults to the source's where the format stores it (16-bit stays 16-bit in
    PNG and TIFF, float stays float in TIFF, EXR and HDR; JPEG and WebP are 8-bit). EXIF (turned
    upright, with Studio's steps in ImageDescription/Software), ICC and XMP go wherever the format
    keeps them, alpha too. `quality` (1-100) applies to JPEG and WebP (100 = lossless WebP).
    The file appears complete or not at all; it never replaces `inputs` or the image's source.
    """
    target = Path(path)
    fmt = _FORMAT_BY_EXTENSION.get(target.suffix.lower())
    if fmt is None:
        choices = ", ".join(sorted(WRITABLE_EXTENSIONS))
        raise UsageError(f"Cannot write {target.name}: use one of {choices}")
    if not 1 <= quality <= 100:
        raise UsageError(f"Quality must be between 1 and 100, not {quality}")
    depth = _output_depth(fmt, image.meta.bit_depth, bit_depth)
    if max(image.width, image.height) > _MAX_SIDE.get(fmt, sys.maxsize):
        raise UsageError(
            f"{fmt.upper()} images can be at most {_MAX_SIDE[fmt]} pixels a side, this one is "
            f"{image.width}x{image.height}: choose PNG or TIFF"
        )
    _refuse_inputs(target, [*inputs, *filter(None, [image.meta.source_path])])
    output = _prepare(image, fmt, depth, quality)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _replace_when_done(target) as temporary:
            _WRITERS[fmt](output, temporary)
    except OSError as error:
        raise BadInputError(f"Cannot write {target}: {_reason(error)}") from error
    return target


def _output_depth(fmt: str, source: int, requested: int | None) -> int:
    allowed = _DEPTHS[fmt]
    if requested is None:
        return 32 if fmt == "exr" else source if source in allowed else max(allowed)
    if requested not in allowed:
        options = " or ".join(str(depth) for depth in allowed)
        raise UsageError(f"{fmt.upper()} stores {options}-bit samples, not {requested}-bit")
    return requested


def _same_file(first: Path, second: Path) -> bool:
    with contextlib.suppress(OSError):
        if first.exists() and second.exists():
            return os.path.samefile(first, second)
    return first.resolve() == second.resolve()


def _refuse_inputs(target: Path, inputs: Iterable[PathLike]) -> None:
    for source in inputs:
        if _same_file(target, Path(source)):
            raise BadInputError(
                f"Refusing to overwrite the input {source}: choose another output path"
            )


@contextlib.contextmanager
def _replace_when_done(target: Path) -> Iterator[Path]:
    """A fresh temporary path beside `target` that replaces it on success, vanishes on failure."""
    while True:
        temporary = target.with_name(f".{target.name[:200]}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield temporary
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _quantise(values: FloatArray, depth: int) -> Samples:
    if depth == 32:
        return np.asarray(values, dtype=np.float32)
    top = 255 if depth == 8 else 65535
    scaled = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    scaled *= top
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8 if depth == 8 else np.uint16)


def _icc_space(icc: bytes) -> bytes:
    return icc[16:20] if len(icc) >= 20 else b""


def _prepare(image: Image, fmt: str, depth: int, quality: int) -> _Output:
    pixels = image.pixels
    if fmt in ("webp", "hdr"):
        pixels = as_rgb(pixels)
    sample_depth = 32 if fmt == "exr" else depth  # the EXR writer makes its own half floats
    alpha = image.alpha if fmt in _ALPHA_FORMATS else None
    icc = image.meta.icc_profile
    wanted_space = b"RGB " if pixels.shape[2] == 3 else b"GRAY"
    return _Output(
        colour=_quantise(pixels, sample_depth),
        alpha=None if alpha is None else _quantise(alpha, sample_depth),
        depth=depth,
        quality=quality,
        exif=exiflib.output_exif(image.meta.exif, image.meta.history, image.width, image.height),
        icc=icc if icc and _icc_space(icc) == wanted_space else None,
        meta=image.meta,
    )


def _with_alpha(output: _Output) -> Samples:
    if output.alpha is None:
        return output.colour
    return np.concatenate([output.colour, output.alpha[..., None]], axis=2)


def _pillow_picture(output: _Output) -> PILImage.Image:
    samples = _with_alpha(output)
    return PILImage.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples)


def _write_jpeg(output: _Output, path: Path) -> None:
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
    PILImage.fromarray(
        output.colour[..., 0] if output.colour.shape[2] == 1 else output.colour
    ).save(encoded, "JPEG", **options)
    path.write_bytes(encoded.getbuffer())


def _write_webp(output: _Output, path: Path) -> None:
    options: dict[str, Any] = {"quality": output.quality, "lossless": output.quality == 100}
    exif = exiflib.exif_bytes(output.exif)
    if exif:
        options["exif"] = exif
    if output.icc:
        options["icc_profile"] = output.icc
    if output.meta.xmp:
        options["xmp"] = output.meta.xmp
    _pillow_picture(output).save(path, "WEBP", **options)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png(output: _Output, path: Path) -> None:
    samples = _with_alpha(output)
    encoded = bytes(imagecodecs.png_encode(samples[..., 0] if samples.shape[2] == 1 else samples))
    chunks = []
    if output.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(output.icc)))
    exif = exiflib.exif_bytes(output.exif)
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")))
    if output.meta.xmp:
        chunks.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp" + b"\x00" * 5 + output.meta.xmp))
    header_end = 8 + 8 + 13 + 4  # signature, then the IHDR chunk, which must come first
    path.write_bytes(encoded[:header_end] + b"".join(chunks) + encoded[header_end:])


def _write_tiff(output: _Output, path: Path) -> None:
    samples = _with_alpha(output)
    exif = output.exif
    big = samples.nbytes > _CLASSIC_TIFF_LIMIT
    pointers = [] if big else [tag for tag in _TIFF_POINTER_STAND_INS if exiflib.sub_ifd(exif, tag)]
    extratags: list[tuple[int, str, int, Any, bool]] = [
        (tag, "s", 0, str(exif[tag]).encode(), True) for tag in _TIFF_TEXT_TAGS if tag in exif
    ]
    if output.meta.xmp:
        extratags.append((700, "B", len(output.meta.xmp), output.meta.xmp, True))
    extratags += [(_TIFF_POINTER_STAND_INS[tag], "I", 1, 0, True) for tag in pointers]
    description = exif.get(exiflib.IMAGE_DESCRIPTION)
    tifffile.imwrite(
        path,
        samples[..., 0] if samples.shape[2] == 1 else samples,
        photometric="rgb" if output.colour.shape[2] == 3 else "minisblack",
        extrasamples=("unassalpha",) if output.alpha is not None else None,
        compression="zlib",
        predictor=True,
        metadata=None,
        description=str(description).encode() if description else None,
        software=str(exif.get(exiflib.SOFTWARE, f"Studio {studio.__version__}")).encode(),
        iccprofile=output.icc,
        **_tiff_resolution(exif),
        extratags=extratags,
        byteorder="<",
        bigtiff=big,
    )
    if pointers:
        _attach_sub_ifds(path, exif, pointers)


def _tiff_resolution(exif: PILImage.Exif) -> dict[str, Any]:
    """tifffile's resolution arguments from the EXIF's, when it has usable ones."""
    with contextlib.suppress(KeyError, TypeError, ValueError, ZeroDivisionError):
        resolution = (float(exif[0x011A]), float(exif[0x011B]))
        return {"resolution": resolution, "resolutionunit": int(exif.get(0x0128, 2))}
    return {}


def _attach_sub_ifds(path: Path, exif: PILImage.Exif, tags: list[int]) -> None:
    """Append the EXIF/GPS IFDs to a written TIFF and turn the stand-in tags into pointers."""
    with tifffile.TiffFile(path) as tif:
        entries = tif.pages.first.tags
        stand_ins = [entries[_TIFF_POINTER_STAND_INS[tag]] for tag in tags]
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


def _write_hdr(output: _Output, path: Path) -> None:
    finite = np.nan_to_num(np.asarray(output.colour, dtype=np.float32), posinf=3.0e38)
    radiance = np.ascontiguousarray(np.clip(finite, 0.0, None))
    path.write_bytes(bytes(imagecodecs.rgbe_encode(radiance)))


def _write_exr(output: _Output, path: Path) -> None:
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
    }
    meta = output.meta
    if meta.history:
        header["comments"] = exiflib.describe(meta.history)
    for (attribute, _), value in zip(
        _EXR_EXPOSURE, (meta.exposure_time, meta.f_number, meta.iso), strict=True
    ):
        if value:
            header[attribute] = float(value)
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


_WRITERS: dict[str, Callable[[_Output, Path], None]] = {
    "jpeg": _write_jpeg,
    "png": _write_png,
    "webp": _write_webp,
    "tiff": _write_tiff,
    "hdr": _write_hdr,
    "exr": _write_exr,
}
