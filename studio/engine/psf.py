"""Point-spread functions: parametric (motion, defocus, Gaussian) or loaded from a file.

Every kernel is a 2-D float32 array of odd size, non-negative, normalised to unit sum.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image as PILImage
from pydantic import Field

from studio.core.errors import BadInputError
from studio.core.image import FloatArray
from studio.core.protocol import Params

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

    Raises BadInputError with the reason when the file cannot be used as a blur kernel.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"Kernel file not found: {path}")
    try:
        if path.suffix.lower() == ".npy":
            kernel = np.load(path, allow_pickle=False)
        else:
            with PILImage.open(path) as img:
                kernel = np.asarray(img.convert("F"), dtype=np.float64)
    except (OSError, ValueError) as err:
        raise BadInputError(f"Cannot read the kernel file {path.name}: {err}") from None
    kernel = np.squeeze(np.asarray(kernel))
    if kernel.ndim != 2 or not np.issubdtype(kernel.dtype, np.number):
        raise BadInputError(
            f"The kernel in {path.name} must be a 2-D grayscale array, got shape {kernel.shape}"
        )
    if max(kernel.shape) > MAX_KERNEL_SIZE:
        raise BadInputError(
            f"The kernel in {path.name} is {kernel.shape[1]}x{kernel.shape[0]} pixels; "
            f"at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE} is supported"
        )
    if not np.all(np.isfinite(kernel)):
        raise BadInputError(f"The kernel in {path.name} contains NaN or infinite values")
    return normalise(kernel)


class PsfShape(Params):
    """A blur, by shape and size or as a kernel file: what deblur removes and degrade adds."""

    psf: Literal["motion", "defocus", "gaussian"] = Field(
        "motion",
        title="Blur shape",
        description="Shape of the blur: camera motion, defocus or Gaussian",
    )
    length: float = Field(9.0, ge=1.0, le=150.0, description="Motion blur: streak length (px)")
    angle: float = Field(
        0.0, ge=-180.0, le=180.0, description="Motion blur: direction in degrees, 0 = horizontal"
    )
    radius: float = Field(3.0, ge=0.5, le=75.0, description="Defocus blur: disc radius (px)")
    sigma: float = Field(1.5, ge=0.2, le=30.0, description="Gaussian blur: standard deviation (px)")
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
