"""Writing: the format the suffix names, complete or not at all, never over an input."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from studio.core import exif as exiflib
from studio.core.errors import BadInputError, UsageError
from studio.core.image import as_rgb
from studio.core.imageio.colour import srgb_encoded
from studio.core.imageio.encoders import ENCODERS, Output, metadata_left_out
from studio.core.imageio.formats import (
    ALPHA_FORMATS,
    RGB_ONLY_FORMATS,
    STORED_BITS,
    PathLike,
    check_writable,
    notice,
    output_depth,
    output_format,
)
from studio.core.paths import same_file
from studio.core.stored import Result, StoredImage, as_image, band_rows, converted


def write_image(
    image: Result,
    path: PathLike,
    *,
    bit_depth: int | None = None,
    quality: int = 95,
    inputs: Iterable[PathLike] = (),
) -> Path:
    """Write `image` in the format its suffix names; return the path written.

    The bit depth defaults to the source's where the format stores it (16-bit stays 16-bit in
    PNG and TIFF, float stays float in TIFF, EXR and HDR; JPEG and WebP are 8-bit), with a
    notice when depth or alpha is lost. A linear-light camera RAW is written sRGB-encoded with
    the sRGB profile to 8- and 16-bit files, and linear to float ones. EXIF (turned upright,
    Studio's steps in Software), ICC and XMP go wherever the format keeps them, alpha too.
    `quality` (1-100) applies to JPEG and WebP (100 = lossless WebP). The file appears complete
    or not at all; it never replaces `inputs` or the image's source. A `StoredImage`
    already at the output's depth is encoded as it is; any other conversion is made a band of
    rows at a time.
    """
    target = Path(path)
    fmt = output_format(target)
    if not 1 <= quality <= 100:
        raise UsageError(f"Quality must be between 1 and 100, not {quality}")
    depth = output_depth(fmt, image.meta.bit_depth, bit_depth)
    check_writable(target, image.width, image.height, bit_depth=depth)
    _refuse_inputs(target, [*inputs, *filter(None, [image.meta.source_path])])
    _tell_about_losses(image, target, fmt, depth)
    output = _prepare(image, fmt, depth, quality, target.name)
    if left_out := metadata_left_out(output, fmt):
        notice(f"{target.name}: {fmt.upper()} cannot hold {'; '.join(left_out)}: left out of "
               "the file (TIFF keeps them all)")  # fmt: skip
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _replace_when_done(target) as temporary:
            ENCODERS[fmt](output, temporary)
    except OSError as error:
        text = error.strerror or str(error) or type(error).__name__
        raise BadInputError(f"Cannot write {target}: {text}") from error
    return target


def _tell_about_losses(image: Result, target: Path, fmt: str, depth: int) -> None:
    source = image.meta.bit_depth
    if depth < source and depth < 32:
        kind = "float" if source == 32 else f"{source}-bit"
        bits = STORED_BITS.get(fmt, depth) if depth == 16 else depth
        notice(f"{target.name}: {fmt.upper()} keeps {bits} bits per sample; the {kind} "
               "source's finer levels are rounded away")  # fmt: skip
    if source == 32 and depth < 32 and (brighter := _share_above_one(image)):
        notice(f"{target.name}: {fmt.upper()} stores values from 0 to 1; {brighter:.2%} of the "
               "float result's samples are brighter and are clipped (write EXR, TIFF or JPEG "
               "XL to keep them)")  # fmt: skip
    if image.alpha is not None and fmt not in ALPHA_FORMATS:
        notice(f"{target.name}: {fmt.upper()} has no transparency; the alpha channel is dropped")


def _share_above_one(image: Result) -> float:
    """The share of colour samples above 1, counted a band of rows at a time."""
    values = image.samples if isinstance(image, StoredImage) else image.pixels
    rows = band_rows(values)
    above = sum(
        int(np.count_nonzero(values[top : top + rows] > 1.0))
        for top in range(0, values.shape[0], rows)
    )
    return above / max(1, values.size)


def _refuse_inputs(target: Path, inputs: Iterable[PathLike]) -> None:
    for source in inputs:
        if same_file(target, Path(source)):
            raise BadInputError(
                f"Refusing to overwrite the input {source}: choose another output path"
            )


def write_file_atomically(target: Path, data: bytes) -> None:
    """Write `data` as `target` all at once: a failure leaves any earlier file as it was."""
    with _replace_when_done(target) as temporary:
        temporary.write_bytes(data)


def temporary_prefix(name: str) -> str:
    """The start of `name` that a temporary file beside it carries: at most 200 bytes as the
    file system stores it, so that the temporary's name stays within the usual 255 bytes (a
    long name in Japanese or Cyrillic takes two or three bytes a character)."""
    prefix = name[:200]
    while len(os.fsencode(prefix)) > 200:
        prefix = prefix[:-1]
    return prefix


@contextlib.contextmanager
def _replace_when_done(target: Path) -> Iterator[Path]:
    """A fresh temporary path beside `target` that replaces it on success, vanishes on failure.

    A replaced file keeps its permission mode.
    """
    while True:
        temporary = target.with_name(
            f".{temporary_prefix(target.name)}.{secrets.token_hex(4)}.part"
        )
        try:
            os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield temporary
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _icc_space(icc: bytes) -> bytes:
    return icc[16:20] if len(icc) >= 20 else b""


def _prepare(image: Result, fmt: str, depth: int, quality: int, name: str) -> Output:
    sample_depth = 32 if fmt == "exr" else depth  # the EXR writer makes its own half floats
    if sample_depth != 32 and image.meta.is_linear_photo:
        image = srgb_encoded(as_image(image))  # a linear-light RAW: float files keep it linear
    pixels = image.samples if isinstance(image, StoredImage) else image.pixels
    if fmt in RGB_ONLY_FORMATS:
        pixels = as_rgb(pixels)
    alpha = image.alpha if fmt in ALPHA_FORMATS else None
    icc = image.meta.icc_profile
    wanted_space = b"RGB " if pixels.shape[2] == 3 else b"GRAY"
    return Output(
        colour=converted(pixels, sample_depth),
        alpha=None if alpha is None else converted(alpha, sample_depth),
        depth=depth,
        quality=quality,
        exif=exiflib.output_exif(image.meta.exif, image.meta.history, image.width, image.height),
        icc=icc if icc and _icc_space(icc) == wanted_space else None,
        meta=image.meta,
        name=name,
    )
