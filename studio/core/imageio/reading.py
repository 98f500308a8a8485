"""Reading: any supported file as float32 pixels, upright, finite, with its metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.core import exif as exiflib
from studio.core.errors import BadInputError, StudioError
from studio.core.image import FloatArray, Image, ImageMeta, as_rgb
from studio.core.imageio.decoded import Decoded, Samples
from studio.core.imageio.decoders import DECODERS, is_dng
from studio.core.imageio.formats import (
    RAW_EXTENSIONS,
    SNIFF_BYTES,
    SUPPORTED_EXTENSIONS,
    PathLike,
    notice,
    pixel_limit,
    sniff,
)
from studio.core.paths import require_regular_file

# Exceptions whose message describes the file (a decoder's own words); anything else is a
# Python-level failure whose text would mean nothing to a photographer.
_DESCRIPTIVE_ERRORS = (OSError, ValueError, SyntaxError, EOFError)
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def read_image(path: PathLike, max_pixels: int | None = None) -> Image:
    """Read an image file as float32 pixels with its bit depth, alpha, EXIF, ICC and XMP.

    Raises `BadInputError` (naming the file) for anything that cannot be read, and for images
    with more than `pixel_limit(max_pixels)` pixels, before decoding them. Non-finite samples
    (NaN, infinity) of float files are replaced by the mean of their finite neighbours, with
    a notice saying how many.
    """
    source = Path(path)
    limit = pixel_limit(max_pixels)
    require_regular_file(source)
    fmt = _detect_format(source)
    try:
        decoded = DECODERS[fmt](source, limit)
        return _to_image(decoded, source, fmt)
    except StudioError:
        raise
    except MemoryError:
        raise BadInputError(f"Cannot read {source}: not enough memory for this image") from None
    except Exception as error:
        raise BadInputError(f"Cannot read {source}: {_reason(error, fmt)}") from error


def _reason(error: BaseException, fmt: str = "") -> str:
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    wordy = lines and any(character.isalpha() for character in lines[0])
    if not isinstance(error, _DESCRIPTIVE_ERRORS) or not wordy:  # e.g. "0": no reason at all
        kind = f"{fmt.upper()} file" if fmt else "file"
        return f"the {kind} is damaged or stored in a way Studio cannot decode"
    return lines[0]


def _detect_format(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            head = stream.read(SNIFF_BYTES)
    except OSError as error:
        raise BadInputError(f"Cannot read {path}: {_reason(error)}") from error
    if not head:
        raise BadInputError(f"Cannot read {path}: the file is empty")
    fmt = sniff(head)
    if fmt == "tiff" and (path.suffix.lower() in RAW_EXTENSIONS or is_dng(path)):
        return "raw"
    if fmt is None and path.suffix.lower() in RAW_EXTENSIONS:
        return "raw"
    if fmt is None:
        raise BadInputError(f"Cannot read {path}: not a supported image file")
    return fmt


def _to_float(samples: Samples, path: Path) -> FloatArray:
    if samples.dtype == np.uint8:
        return samples.astype(np.float32) / np.float32(255)
    if samples.dtype == np.uint16:
        return samples.astype(np.float32) / np.float32(65535)
    if samples.dtype == np.bool_ or samples.dtype.kind == "f":
        return samples.astype(np.float32)
    raise BadInputError(f"Cannot read {path}: unsupported sample format {samples.dtype}")


def repair_non_finite(values: FloatArray, path: Path) -> int:
    """Replace NaN and infinite samples in place by the mean of their finite neighbours.

    Holes fill from their edge inwards; returns how many pixels had such samples. Refuses a
    picture with a channel that has no finite sample at all.
    """
    broken = ~np.isfinite(values)
    count = int(np.count_nonzero(broken.any(axis=2)))
    ys, xs, cs = np.nonzero(broken)
    del broken
    height, width = values.shape[:2]
    while ys.size:
        total = np.zeros(ys.size, np.float64)
        found = np.zeros(ys.size, np.int32)
        for dy, dx in _NEIGHBOURS:
            near = values[np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1), cs]
            finite = np.isfinite(near)
            total += np.where(finite, near, 0.0)
            found += finite
        fixed = found > 0
        if not fixed.any():
            raise BadInputError(f"Cannot read {path}: no pixel of the image is a finite number")
        values[ys[fixed], xs[fixed], cs[fixed]] = total[fixed] / found[fixed]
        ys, xs, cs = ys[~fixed], xs[~fixed], cs[~fixed]
    return count


def _to_image(decoded: Decoded, path: Path, fmt: str) -> Image:
    samples = decoded.samples if decoded.samples.ndim == 3 else decoded.samples[..., None]
    if samples.size == 0:
        raise BadInputError(f"Cannot read {path}: the image has no pixels")
    values = _to_float(samples, path)
    if samples.dtype.kind == "f":
        repaired = repair_non_finite(values, path)
        if repaired:
            notice(
                f"{path.name}: {repaired} pixel{'s' if repaired > 1 else ''} with NaN or "
                "infinite values repaired from their neighbours"
            )
    colour = 3 if values.shape[2] >= 3 else 1
    pixels = values[..., :colour]
    alpha = values[..., colour] if values.shape[2] > colour else None
    if alpha is not None and decoded.premultiplied:
        visible = alpha[..., None] > 0  # fully transparent pixels carry no colour: black
        pixels = np.divide(pixels, alpha[..., None], out=np.zeros_like(pixels), where=visible)
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
        linear=decoded.linear,
    )
    return Image(
        np.ascontiguousarray(pixels, dtype=np.float32),
        meta,
        None if alpha is None else np.ascontiguousarray(alpha, dtype=np.float32),
    )


# ---------------------------------------------------------------------------------------------
# Masks and hints


def read_mask(path: PathLike, shape: tuple[int, int]) -> FloatArray:
    """A (H, W) mask in [0, 1] where white (opaque) is 1, from a grey, RGB or RGBA file.

    A colour file selects by its brightest channel (marks painted in pure red select), and a
    whole-number file holding only 0 and 1 (a boolean array saved as an image) is read as
    black and white, with a notice.
    """
    image = read_image(path)
    _check_shape("Mask", image, shape, Path(path))
    values: FloatArray = image.pixels.max(axis=2)
    top = 2.0**image.meta.bit_depth - 1
    if image.meta.bit_depth in (8, 16) and 0 < np.max(values) * top < 1.5:
        notice(f"{Path(path).name} holds only the values 0 and 1: read as black and white")
        values = np.rint(values * top).astype(np.float32)
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
