"""Plug-and-play restoration: a Gaussian denoiser network as the prior of half-quadratic
splitting (Zhang et al., DPIR, 2021).

Each iteration alternates a closed-form data step (an FFT solve for blur, a masked average for
missing pixels) with one pass of the denoiser at a decreasing noise level. Any installed
Gaussian denoiser serves: FFDNet and DRUNet take the noise level as input; DnCNN ignores it.
"""

from __future__ import annotations

from collections.abc import Generator

import cv2
import numpy as np

from studio.core.image import FloatArray
from studio.core.protocol import Progress, RunContext
from studio.engine.neural.executor import Extras, run_model
from studio.engine.neural.model import LoadedModel

START_SIGMA = 49.0 / 255.0
DATA_WEIGHT = 0.23  # DPIR's lambda, balancing data fidelity against the prior
PAD_FACTOR = 3  # reflect padding in kernel sizes, keeping the FFT's wrap-around off the photo


def noise_schedule(final_sigma: float, iterations: int) -> FloatArray:
    """Denoiser noise levels from 49/255 down to `final_sigma`, evenly in log scale."""
    end = max(final_sigma, 0.255 / 255.0)
    return np.logspace(np.log10(START_SIGMA), np.log10(end), iterations).astype(np.float32)


def _psf_to_otf(kernel: FloatArray, shape: tuple[int, int]) -> np.ndarray:
    """The kernel's transfer function on a (H, W) grid, centred on the origin."""
    padded = np.zeros(shape, np.float64)
    kh, kw = kernel.shape
    padded[:kh, :kw] = kernel
    padded = np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.rfft2(padded)


def deblur(
    denoiser: LoadedModel,
    blurred: FloatArray,
    kernel: FloatArray,
    noise_sigma: float,
    ctx: RunContext,
    iterations: int = 8,
) -> Generator[Progress, None, FloatArray]:
    """Non-blind deblurring of (H, W, C) `blurred` by `kernel`; noise_sigma on the 0-1 scale."""
    pad = PAD_FACTOR * max(kernel.shape)
    padded = cv2.copyMakeBorder(blurred, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    padded = padded if padded.ndim == 3 else padded[..., None]
    shape = padded.shape[:2]
    otf = _psf_to_otf(kernel, shape)[..., None]
    otf_y = np.conj(otf) * np.fft.rfft2(padded, axes=(0, 1))
    otf_power = np.abs(otf) ** 2
    sigma = max(noise_sigma, 0.255 / 255.0)
    x = padded.astype(np.float32)
    for i, level in enumerate(noise_schedule(sigma, iterations)):
        tau = DATA_WEIGHT * sigma**2 / float(level) ** 2
        spectrum = (otf_y + tau * np.fft.rfft2(x, axes=(0, 1))) / (otf_power + tau)
        x = np.fft.irfft2(spectrum, s=shape, axes=(0, 1)).astype(np.float32)
        yield Progress(i, iterations, f"Deblurring: iteration {i + 1}/{iterations}")
        x = yield from _denoise(denoiser, x, float(level), ctx)
    return np.ascontiguousarray(x[pad : pad + blurred.shape[0], pad : pad + blurred.shape[1]])


def inpaint(
    denoiser: LoadedModel,
    damaged: FloatArray,
    missing: FloatArray,
    ctx: RunContext,
    iterations: int = 16,
    final_sigma: float = 3.0 / 255.0,
) -> Generator[Progress, None, FloatArray]:
    """Fill the `missing` (H, W) pixels (1 = missing) of (H, W, C) `damaged`."""
    known = (missing < 0.5).astype(np.float32)[..., None]
    x = _normalised_fill(damaged, known)
    for i, level in enumerate(noise_schedule(final_sigma, iterations)):
        yield Progress(i, iterations, f"Filling: iteration {i + 1}/{iterations}")
        z = yield from _denoise(denoiser, x, float(level), ctx)
        x = known * damaged + (1.0 - known) * z
    return np.asarray(x, dtype=np.float32)


def _normalised_fill(image: FloatArray, known: FloatArray) -> FloatArray:
    """A first guess: each missing pixel from a Gaussian average of its known neighbours."""
    filled = image * known
    for radius in (2.0, 6.0, 18.0):
        weights = cv2.GaussianBlur(known, (0, 0), radius).reshape(known.shape)
        blurred = cv2.GaussianBlur(image * known, (0, 0), radius).reshape(image.shape)
        estimate = blurred / np.maximum(weights, 1e-6)
        filled = np.where((known > 0) | (weights < 1e-3), filled, estimate)
        if (weights > 1e-3).all():
            break
    return np.asarray(known * image + (1 - known) * filled, dtype=np.float32)


def _denoise(
    denoiser: LoadedModel, x: FloatArray, sigma: float, ctx: RunContext
) -> Generator[Progress, None, FloatArray]:
    clipped = np.clip(x, 0.0, 1.0)
    return (yield from run_model(denoiser, clipped, ctx, Extras(sigma=sigma), "Denoiser prior"))
