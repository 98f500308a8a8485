"""The automatic deblur job: estimate the camera-shake kernel on the most informative window
(or the user's region), check that it is a real blur, then deconvolve the whole photo.

An estimate is trusted only when the kernel is clearly spread (not a near-delta) and it
explains the window's power spectrum clearly better than no blur does (the marginal
likelihood of a Gaussian image model, see `_deblur_auto`) and at least about as well as the
best simple blur (straight motion, defocus, Gaussian); otherwise the photo is returned
unchanged with NO_BLUR_MESSAGE.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from studio.core.image import FloatArray, luminance
from studio.core.protocol import Progress

if TYPE_CHECKING:
    import torch

NO_BLUR_MESSAGE = "no reliable blur found; the photo is left as it is"
WINDOW = 768
MIN_SIDE = 48
MIN_KERNEL = 63
DEFAULT_FRACTION = 0.02
MAX_KERNEL = 101
WINDOW_PER_KERNEL = 4
DELTA_PEAK = 0.5
MIN_SPREAD = 5.0
MIN_LIKELIHOOD_GAIN = 0.12
SIMPLE_BLUR_MARGIN = 0.03
STRENGTH_HALVING = 0.1
MIN_STRENGTH = 1 / 16


@dataclass(frozen=True)
class BlindEstimate:
    """The kernel found (None when unreliable) and why it was kept or refused."""

    kernel: FloatArray | None
    reason: str


def default_kernel_size(height: int, width: int) -> int:
    """About DEFAULT_FRACTION of the long side, at least MIN_KERNEL, at most MAX_KERNEL px."""
    size = int(np.clip(round(DEFAULT_FRACTION * max(height, width)), MIN_KERNEL, MAX_KERNEL))
    return size + 1 - size % 2


def fitted_kernel_size(requested: int, window: tuple[int, int]) -> int:
    """The requested size, shrunk to leave WINDOW_PER_KERNEL kernels across the window."""
    size = min(requested, min(window) // WINDOW_PER_KERNEL)
    return max(3, size + 1 - size % 2)


def estimation_window(plane: FloatArray, region: FloatArray | None) -> FloatArray:
    """The WINDOW x WINDOW window with the most gradient energy inside the region's bounding
    box (grown to at least 2 * MIN_SIDE px a side), or inside the whole plane."""
    from studio.engine.ops._deblur_auto import busiest_window

    if region is not None:
        weight = region[..., 0] if region.ndim == 3 else region
        rows, cols = np.nonzero(weight > 0.5)
        if rows.size:
            top, bottom = _grown(int(rows.min()), int(rows.max()) + 1, plane.shape[0])
            left, right = _grown(int(cols.min()), int(cols.max()) + 1, plane.shape[1])
            plane = plane[top:bottom, left:right]
    return busiest_window(plane, WINDOW)


def _grown(start: int, stop: int, length: int) -> tuple[int, int]:
    """[start, stop) grown around its centre to at least 2 * MIN_SIDE px, inside [0, length)."""
    side = min(max(stop - start, 2 * MIN_SIDE), length)
    low = int(np.clip((start + stop - side) // 2, 0, length - side))
    return low, low + side


def normalised_luminance(pixels: FloatArray) -> FloatArray:
    """Luminance scaled so that the photo's white is about 1 (float photos may exceed 1)."""
    plane = luminance(pixels)
    white = float(np.percentile(plane, 99.5))
    return plane / white if white > 1.0 else plane


def estimate_blur(
    pixels: FloatArray,
    region: FloatArray | None,
    max_size: int | None,
    sigma: float,
    device: torch.device,
) -> Generator[Progress, None, BlindEstimate]:
    """Estimate the photo's blur kernel and judge whether to trust it."""
    from studio.engine.ops._deblur_blind import estimate_kernels, supports

    if min(pixels.shape[:2]) < MIN_SIDE:
        return BlindEstimate(None, f"the photo is under {MIN_SIDE} px on a side")
    window = estimation_window(normalised_luminance(pixels), region)
    requested = max_size or default_kernel_size(*pixels.shape[:2])
    size = fitted_kernel_size(requested, (window.shape[0], window.shape[1]))
    kernels = yield from estimate_kernels(np.ascontiguousarray(window), supports(size), device)
    yield Progress(0, 1, "Checking the estimated blur against the photo")
    candidates = fitting_estimates(kernels)
    return judged(most_likely(candidates, window, sigma, device), window, sigma, device)


def fitting_estimates(kernels: list[FloatArray]) -> list[FloatArray]:
    """Of one estimate per support (largest first, see `supports`), those worth comparing: a
    smaller support's estimate that fills its support from edge to edge is cut short (a
    long shake), so the larger one stands; one that fits inside makes a larger estimate
    reaching beyond it suspect, since that reach is a faint streak along the photo's
    dominant edges (it cost up to 2.2 dB on tuning and validation photos, 6 dB on the
    bundled lakeside sample's region)."""
    kept = [kernels[0]]
    for estimate in kernels[1:]:
        if max(kernel_extent(estimate)) >= estimate.shape[0]:
            continue
        kept = [k for k in kept if max(kernel_extent(k)) <= estimate.shape[0]] + [estimate]
    return kept


def most_likely(
    kernels: list[FloatArray], window: FloatArray, sigma: float, device: torch.device
) -> FloatArray:
    """The kernel that best explains the window's power spectrum (see `judged`), measured
    on tiles about twice the largest kernel (so that its spectral zeros are resolved), at
    most the window."""
    import torch

    from studio.engine.ops._deblur_auto import neg_log_likelihoods, welch_spectrum

    largest = max(k.shape[0] for k in kernels) + 16
    size = min(2 ** int(np.ceil(np.log2(2 * largest))), 2 ** int(np.log2(min(window.shape))))
    if len(kernels) == 1 or size < largest:
        return kernels[0]
    with torch.inference_mode():
        nll = neg_log_likelihoods(welch_spectrum(window, size), kernels, sigma, device)
    return kernels[int(np.argmin(nll))]


def judged(
    kernel: FloatArray, window: FloatArray, sigma: float, device: torch.device
) -> BlindEstimate:
    """The kernel if it is spread, explains the window's spectrum better than no blur, and
    explains it about as well as the best straight motion, defocus or Gaussian blur of its
    size at least: a real shake's own kernel does, a wrong estimate (which rings the photo
    below its blurred self) need not."""
    import torch

    from studio.engine.ops._deblur_auto import candidates, neg_log_likelihoods, welch_spectrum

    spread = 1.0 / float((kernel.astype(np.float64) ** 2).sum())
    if kernel.max() > DELTA_PEAK or spread < MIN_SPREAD:
        return BlindEstimate(None, "the estimated kernel is a point")
    size = spectrum_size(kernel, window)
    if min(window.shape) < size:
        return BlindEstimate(kernel, "kernel found")
    simple = [k for _, k in candidates("any", max(kernel.shape))[1:]]
    delta = np.ones((1, 1), np.float32)
    with torch.inference_mode():
        nll = neg_log_likelihoods(
            welch_spectrum(window, size), [delta, kernel, *simple], sigma, device
        )
    if nll[0] - nll[1] < MIN_LIKELIHOOD_GAIN:
        return BlindEstimate(None, "the kernel explains the photo no better than no blur")
    if nll[1] - nll[2:].min() > SIMPLE_BLUR_MARGIN:
        return BlindEstimate(None, "the kernel explains the photo worse than a simple blur")
    return BlindEstimate(kernel, "kernel found")


def spectrum_size(kernel: FloatArray, window: FloatArray) -> int:
    """The tile side of the window's power spectrum that the likelihood compares kernels on:
    the power of two holding twice the kernel (so a long shake's spectral pattern is
    resolved) where the window holds two such tiles a side, else the power of two holding
    the kernel. Tiles of one kernel plus a margin left a true 41-px camera path explaining
    the photo less than MIN_LIKELIHOOD_GAIN better than no blur (0.08 on 64-px tiles, 0.13 on
    128-px ones, measured on CBSD68 143090)."""
    extent = int(max(kernel.shape))
    wide = 1 << (2 * extent + 15).bit_length()
    return wide if min(window.shape) >= 2 * wide else 1 << (extent + 15).bit_length()


def matched_strength(
    pixels: FloatArray, kernel: FloatArray, sigma: float, device: torch.device
) -> float:
    """How much of a given blur kernel to remove: 1 when the kernel explains the busiest
    window's power spectrum as much better than no blur as an estimate must (so a kernel the
    blind estimate kept round-trips whole), halving for every STRENGTH_HALVING it falls short,
    at least MIN_STRENGTH. A blur that the photo does not have would otherwise ring
    violently."""
    import torch

    from studio.engine.ops._deblur_auto import neg_log_likelihoods, welch_spectrum

    window = estimation_window(normalised_luminance(pixels), None)
    size = spectrum_size(kernel, window)
    if min(window.shape) < size:
        return 1.0
    delta = np.ones((1, 1), np.float32)
    with torch.inference_mode():
        nll = neg_log_likelihoods(welch_spectrum(window, size), [delta, kernel], sigma, device)
    shortfall = float(nll[1] - nll[0]) + MIN_LIKELIHOOD_GAIN
    return float(np.clip(0.5 ** (shortfall / STRENGTH_HALVING), MIN_STRENGTH, 1.0))


def weakened(kernel: FloatArray, strength: float) -> FloatArray:
    """strength x kernel + (1 - strength) x a centred point: under 1/2 its transfer function
    has no zero, so deconvolving it amplifies nothing more than 1 / (1 - 2 strength)."""
    out = kernel * strength
    out[kernel.shape[0] // 2, kernel.shape[1] // 2] += 1.0 - strength
    return np.asarray(out, np.float32)


def kernel_extent(kernel: FloatArray) -> tuple[int, int]:
    """Width and height of the box holding the kernel's non-zero values."""
    rows, cols = np.nonzero(kernel > 0)
    if not rows.size:
        return 0, 0
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


def trimmed(kernel: FloatArray) -> FloatArray:
    """The smallest window around the kernel's centre holding all its non-zero values, so
    that tiles overlap and pad by the blur's reach, not by the support searched."""
    rows, cols = np.nonzero(kernel > 0)
    if not rows.size:
        return kernel
    centre_row, centre_col = kernel.shape[0] // 2, kernel.shape[1] // 2
    half_height = int(np.abs(rows - centre_row).max())
    half_width = int(np.abs(cols - centre_col).max())
    return np.ascontiguousarray(
        kernel[
            centre_row - half_height : centre_row + half_height + 1,
            centre_col - half_width : centre_col + half_width + 1,
        ]
    )
