"""Automatic PSF estimation by search: try motion streaks, defocus discs and Gaussian blurs
and keep the one that best explains the blurred image's power spectrum.

Under a Gaussian model of natural images (power spectrum A / |f|^2) plus white noise, each
frequency of the blurred image is independent with variance A |K(f)|^2 / |f|^2 + sigma^2, so
the likelihood of a kernel given the image is closed-form: it rewards kernels whose spectral
zeros and fall-off match the image's (the classic spectral signature of motion and defocus
blur). The spectrum is estimated by Welch averaging over windows of a busy crop.

The search is conservative: a blur is accepted only when it explains the spectrum clearly
better than no blur, and the final deconvolution is regularised more than for a known PSF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from studio.core.image import FloatArray, luminance
from studio.engine.psf import defocus_psf, gaussian_psf, motion_psf

if TYPE_CHECKING:
    import torch

CROP = 512
WINDOW = 128
MIN_SIDE = 16
ANGLES = tuple(range(0, 180, 15))
MOTION_LENGTHS = (3, 5, 7, 9, 11, 13, 15, 19, 23, 27, 31, 37, 45, 55, 65, 75, 89, 101)
DEFOCUS_RADII = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 32.0)
GAUSSIAN_SIGMAS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
SIGNAL_LEVELS = np.logspace(-6, 0, 19)
SPECTRAL_SLOPES = (0.8, 1.0, 1.2, 1.4, 1.6)
MIN_GAIN = 0.25
AUTO_SMOOTHING = 2.0
CHUNK = 32


@dataclass(frozen=True)
class FoundPsf:
    """The chosen kernel (None: no blur worth removing), how to describe it, and the extra
    regularisation factor to deconvolve it with."""

    kernel: FloatArray | None
    description: str
    smoothing: float = AUTO_SMOOTHING


def candidates(family: str, max_size: int) -> list[tuple[str, FloatArray]]:
    """(description, kernel) pairs to try, the identity first."""
    found: list[tuple[str, FloatArray]] = [("no blur", np.ones((1, 1), np.float32))]
    if family in ("any", "defocus"):
        found += [
            (f"defocus radius {r:g}", defocus_psf(r)) for r in DEFOCUS_RADII if 2 * r <= max_size
        ]
    if family == "any":
        found += [(f"gaussian sigma {g:g}", gaussian_psf(g)) for g in GAUSSIAN_SIGMAS]
    if family in ("any", "motion"):
        found += [
            (f"motion length {n} angle {a}", motion_psf(n, a))
            for n in MOTION_LENGTHS
            if n <= max_size
            for a in ANGLES
        ]
    return found


def busiest_window(plane: FloatArray, size: int) -> FloatArray:
    """The size x size window of `plane` with the most gradient energy."""
    height, width = plane.shape
    if height <= size and width <= size:
        return plane
    gy, gx = np.gradient(plane)
    integral = cv2.integral(np.hypot(gx, gy).astype(np.float64))
    step = max(8, size // 4)
    ys = np.arange(0, max(1, height - size + 1), step)[:, None]
    xs = np.arange(0, max(1, width - size + 1), step)[None, :]
    y1, x1 = np.minimum(ys + size, height), np.minimum(xs + size, width)
    totals = integral[y1, x1] - integral[ys, x1] - integral[y1, xs] + integral[ys, xs]
    row, col = np.unravel_index(int(np.argmax(totals)), totals.shape)
    y, x = int(ys[row, 0]), int(xs[0, col])
    return plane[y : y + size, x : x + size]


def welch_spectrum(plane: FloatArray, window: int) -> np.ndarray:
    """Mean periodogram (window, window // 2 + 1) of Hann-windowed half-overlapping tiles,
    normalised so that white noise of variance v has spectrum v."""
    height, width = plane.shape
    size = min(window, height, width)
    hann = np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)
    step = size // 2
    tiles = [
        plane[y : y + size, x : x + size]
        for y in range(0, height - size + 1, step)
        for x in range(0, width - size + 1, step)
    ]
    stack = np.stack([(t - t.mean()) * hann for t in tiles])
    power = np.abs(np.fft.rfft2(stack)) ** 2
    return np.asarray(power.mean(axis=0) / float((hann**2).sum()))


def neg_log_likelihoods(
    power: np.ndarray, kernels: list[FloatArray], sigma: float, device: torch.device
) -> np.ndarray:
    """-log p(spectrum | kernel) per frequency, maximised over the signal level A and the
    spectral slope of the image prior (A / |f|^(2 slope))."""
    import torch

    from studio.engine.ops._deblur_solvers import psf_to_otf

    size = power.shape[0]
    shape = (size, size)
    observed = torch.from_numpy(power.astype(np.float32)).to(device)
    dx = psf_to_otf(torch.tensor([[1.0, -1.0]], device=device), shape)
    dy = psf_to_otf(torch.tensor([[1.0], [-1.0]], device=device), shape)
    grad = dx.abs() ** 2 + dy.abs() ** 2
    valid = grad > 1e-6
    observed = observed[valid]
    priors = torch.stack([grad[valid] ** -slope for slope in SPECTRAL_SLOPES])
    levels = torch.from_numpy(SIGNAL_LEVELS.astype(np.float32)).to(device)[:, None, None]
    noise = max(sigma, 1e-3) ** 2
    out = []
    for start in range(0, len(kernels), CHUNK):
        chunk = kernels[start : start + CHUNK]
        gains = torch.stack(
            [psf_to_otf(torch.from_numpy(_fit(k, size)).to(device), shape)[valid] for k in chunk]
        )
        shaped = gains.abs()[:, None] ** 2 * priors[None]  # (kernel, slope, freq)
        model = levels[None] * shaped[:, None] + noise  # (kernel, level, slope, freq)
        nll = (observed / model + model.log()).mean(dim=3)
        out.append(nll.flatten(1).min(dim=1).values)
    return torch.cat(out).cpu().numpy()


def _fit(kernel: FloatArray, size: int) -> FloatArray:
    """Crop a kernel to at most size x size (centred), renormalised."""
    if max(kernel.shape) <= size:
        return kernel
    top = (kernel.shape[0] - size) // 2
    left = (kernel.shape[1] - size) // 2
    cropped = kernel[top : top + size, left : left + size]
    return np.asarray(cropped / cropped.sum(), dtype=np.float32)


def estimate_psf(
    pixels: FloatArray, sigma: float, family: str, max_size: int, device: torch.device
) -> FoundPsf:
    """Search `family` ('any', 'motion', 'defocus') blurs up to `max_size` pixels."""
    import torch

    if min(pixels.shape[:2]) < MIN_SIDE:
        return FoundPsf(None, "picture too small to estimate a blur")

    crop = np.ascontiguousarray(busiest_window(luminance(pixels), CROP), dtype=np.float32)
    window = WINDOW if min(crop.shape) >= 2 * WINDOW else min(crop.shape)
    options = [(d, k) for d, k in candidates(family, max_size) if max(k.shape) < window]
    power = welch_spectrum(crop, window)
    with torch.inference_mode():
        values = neg_log_likelihoods(power, [k for _, k in options], sigma, device)
    best = int(np.argmin(values))
    if best == 0 or values[0] - values[best] < MIN_GAIN:
        return FoundPsf(None, "no clear blur found")
    description, kernel = options[best]
    return FoundPsf(kernel, description)
