"""Point-spread functions: parametric (motion, defocus, Gaussian) or loaded from a file.

Every kernel is a 2-D float32 array of odd size, non-negative, normalised to unit sum.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image as PILImage
from pydantic import Field

from studio.core.errors import BadInputError
from studio.core.image import FloatArray
from studio.core.protocol import Params, applies_when

MAX_KERNEL_SIZE = 255
_SUPERSAMPLE = 8


def _odd(size: float) -> int:
    n = max(1, math.ceil(size))
    return n if n % 2 else n + 1


def normalise(kernel: np.ndarray) -> FloatArray:
    """Pad to odd size, clip negative values to zero and scale to unit sum."""
    kernel = np.nan_to_num(np.asarray(kernel, dtype=np.float64), nan=0.0)
    kernel = np.clip(kernel, 0.0, None)
    total = float(kernel.sum())
    if total <= 0:
        raise BadInputError("The blur kernel is empty (all zero): it must have a positive sum")
    pad_h = 1 - kernel.shape[0] % 2
    pad_w = 1 - kernel.shape[1] % 2
    kernel = np.pad(kernel, ((0, pad_h), (0, pad_w)))
    return (kernel / total).astype(np.float32)


def motion_psf(length: float, angle: float) -> FloatArray:
    """A straight motion streak `length` pixels long at `angle` degrees (0 = horizontal,
    counter-clockwise), anti-aliased by splatting densely sampled points bilinearly."""
    length = max(float(length), 1.0)
    size = _odd(length + 2)
    centre = size // 2
    theta = math.radians(angle)
    steps = max(2, int(length * _SUPERSAMPLE))
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, steps)
    xs = centre + t * math.cos(theta)
    ys = centre - t * math.sin(theta)
    kernel = np.zeros((size, size), dtype=np.float64)
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    fx = xs - x0
    fy = ys - y0
    for dy, dx, w in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        np.add.at(kernel, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), w)
    return normalise(kernel)


def defocus_psf(radius: float) -> FloatArray:
    """A uniform disc of `radius` pixels with anti-aliased rim (out-of-focus blur)."""
    radius = max(float(radius), 0.5)
    size = _odd(2 * radius + 2)
    centre = size // 2
    sub = (np.arange(size * _SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - centre - 0.5
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    inside = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    kernel = inside.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
    return normalise(kernel)


def gaussian_psf(sigma: float) -> FloatArray:
    """An isotropic Gaussian of standard deviation `sigma` pixels, truncated at 3 sigma."""
    sigma = max(float(sigma), 0.1)
    half = max(1, math.ceil(3 * sigma))
    axis = np.arange(-half, half + 1, dtype=np.float64)
    profile = np.exp(-(axis**2) / (2 * sigma**2))
    return normalise(np.outer(profile, profile))


def load_kernel(path: Path) -> FloatArray:
    """Read a kernel from a grayscale image (PNG, TIFF...) or a `.npy` array, normalised.
    A 1-D array is a horizontal kernel. The size is checked from the file's header, before
    any pixel is decoded or allocated.

    Raises BadInputError with the reason when the file cannot be used as a blur kernel.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"Kernel file not found: {path}")
    try:
        kernel = _read_npy(path) if path.suffix.lower() == ".npy" else _read_image(path)
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as err:
        raise BadInputError(f"Cannot read the kernel file {path.name}: {err}") from None
    if not np.issubdtype(kernel.dtype, np.number) or np.iscomplexobj(kernel):
        raise BadInputError(f"The kernel in {path.name} must hold real numbers")
    kernel = _as_2d(path, kernel)
    if not np.all(np.isfinite(kernel)):
        raise BadInputError(f"The kernel in {path.name} contains NaN or infinite values")
    return normalise(kernel)


def _read_image(path: Path) -> np.ndarray:
    """The gray values of an image file, its size checked before it is decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        with PILImage.open(path) as img:
            _check_size(path, (img.height, img.width))
            return np.asarray(img.convert("F"), dtype=np.float64)


def _read_npy(path: Path) -> np.ndarray:
    """The array of a .npy file, its declared shape checked before it is read."""
    with path.open("rb") as file:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(file)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(file)
    _check_size(path, tuple(int(n) for n in shape if n != 1) or (1,))
    return np.asarray(np.load(path, allow_pickle=False))


def _check_size(path: Path, shape: tuple[int, ...]) -> None:
    if len(shape) > 2:
        raise BadInputError(
            f"The kernel in {path.name} must be a 2-D grayscale array, got shape {shape}"
        )
    if max(shape) > MAX_KERNEL_SIZE:
        size = "x".join(str(n) for n in shape[::-1])
        raise BadInputError(
            f"The kernel in {path.name} is {size} pixels; "
            f"at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE} is supported"
        )


def _as_2d(path: Path, kernel: np.ndarray) -> np.ndarray:
    """(H, W): singleton axes beyond two dropped, a 1-D kernel taken as one row."""
    while kernel.ndim > 2 and 1 in kernel.shape:
        kernel = kernel.squeeze(axis=kernel.shape.index(1))
    if kernel.ndim == 1:
        kernel = kernel[None, :]
    if kernel.ndim != 2 or kernel.size == 0:
        raise BadInputError(
            f"The kernel in {path.name} must be a 2-D grayscale array, got shape {kernel.shape}"
        )
    return kernel


def save_kernel(kernel: FloatArray, path: Path) -> None:
    """Write a kernel atomically: `.npy` as float32 values, otherwise a 16-bit grayscale
    image scaled to its peak (what `load_kernel` reads back, renormalised)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with partial.open("wb") as file:
            if path.suffix.lower() == ".npy":
                np.save(file, np.asarray(kernel, np.float32))
            else:
                scaled = np.round(kernel / max(float(kernel.max()), 1e-12) * 65535)
                PILImage.fromarray(scaled.astype(np.uint16)).save(file, format="PNG")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class PsfShape(Params):
    """A blur, by shape and size or as a kernel file: what deblur removes and degrade adds."""

    psf: Literal["motion", "defocus", "gaussian"] = Field(
        "motion",
        title="Blur shape",
        description="Shape of the blur: camera motion, defocus or Gaussian",
    )
    length: float = Field(
        9.0,
        ge=1.0,
        le=150.0,
        description="Motion blur: streak length (px)",
        json_schema_extra=applies_when(psf=("motion",)),
    )
    angle: float = Field(
        0.0,
        ge=-180.0,
        le=180.0,
        description="Motion blur: direction in degrees, 0 = horizontal",
        json_schema_extra=applies_when(psf=("motion",)),
    )
    radius: float = Field(
        3.0,
        ge=0.5,
        le=75.0,
        description="Defocus blur: disc radius (px)",
        json_schema_extra=applies_when(psf=("defocus",)),
    )
    sigma: float = Field(
        1.5,
        ge=0.2,
        le=30.0,
        description="Gaussian blur: standard deviation (px)",
        json_schema_extra=applies_when(psf=("gaussian",)),
    )
    kernel: Path | None = Field(
        None,
        description="Blur kernel as a grayscale image or .npy file; overrides the blur shape",
    )


def kernel_from(params: PsfShape) -> FloatArray:
    """The normalised PSF the parameters describe."""
    if params.kernel is not None:
        return load_kernel(params.kernel)
    if params.psf == "defocus":
        return defocus_psf(params.radius)
    if params.psf == "gaussian":
        return gaussian_psf(params.sigma)
    return motion_psf(params.length, params.angle)
