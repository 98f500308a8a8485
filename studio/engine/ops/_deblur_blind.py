"""Blind estimation of a camera-shake kernel of any shape (uniform blur), coarse to fine.

At each scale of an image pyramid two steps alternate (Xu, Zheng and Jia 2013; Pan, Hu, Su
and Yang 2014):
- a sharp latent image with L0-regularised gradients, by half-quadratic splitting: its few
  strong, clean edges are what the kernel is fitted to;
- the kernel, by least squares in the gradient domain over the strongest latent edges
  (Cho and Lee 2009), solved by conjugate gradients in the kernel's support, then refined
  under a sparse prior (sum |k|^0.5, by iteratively reweighted least squares, as Levin et
  al. 2009 and Krishnan et al. 2011 do) which keeps the mass on the camera's path so that
  its faint parts survive a low threshold; then made positive, stripped of small detached
  components and normalised.
The kernel found at one scale, upsampled, starts the next. Everything runs in torch on the
job's device; the generator yields Progress between iterations so closing it cancels.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING

import cv2
import numpy as np
import scipy.ndimage

from studio.core.image import FloatArray
from studio.core.protocol import Progress

if TYPE_CHECKING:
    import torch

SCALE_RATIO = math.sqrt(0.5)
COARSEST_KERNEL = 5
ITERATIONS = 5
L0_WEIGHT_START = 1e-3
L0_WEIGHT_MIN = 1e-4
L0_WEIGHT_DECAY = 1.1
L0_BETA_MAX = 1e5
L0_BETA_RATE = 2.0
KERNEL_WEIGHT = 20.0
CG_ITERATIONS = 20
EDGE_BINS = 4
EDGES_PER_BIN = 10.0
THRESHOLD_DECAY = 1.1
KERNEL_FLOOR = 0.05
COMPONENT_MIN_MASS = 0.1
KERNEL_SPARSITY = 1e-4
KERNEL_EXPONENT = 0.5
KERNEL_IRLS = 3
KERNEL_EPSILON = 1e-3
SUPPORTS_TRIED = 2
SUPPORT_SHRINK = 0.37
MIN_SUPPORT = 15

KernelRun = Generator[Progress, None, FloatArray]


def scale_sizes(kernel_size: int) -> list[int]:
    """Odd kernel sizes from the coarsest scale (about COARSEST_KERNEL px) to `kernel_size`."""
    levels = max(0, math.floor(math.log(COARSEST_KERNEL / kernel_size) / math.log(SCALE_RATIO)))
    sizes = [math.ceil(kernel_size * SCALE_RATIO**s) for s in range(levels, -1, -1)]
    return [max(3, n + 1 - n % 2) for n in sizes]


def supports(kernel_size: int) -> list[int]:
    """The odd kernel supports to estimate in, largest first: `kernel_size`, then about
    SUPPORT_SHRINK of the previous while at least MIN_SUPPORT, SUPPORTS_TRIED at most. A
    small kernel estimated in a support much larger than itself picks up spurious mass."""
    sizes = [kernel_size]
    while len(sizes) < SUPPORTS_TRIED and round(sizes[-1] * SUPPORT_SHRINK) >= MIN_SUPPORT:
        size = round(sizes[-1] * SUPPORT_SHRINK)
        sizes.append(size + 1 - size % 2)
    return sizes


def estimate_kernels(
    plane: FloatArray, sizes: list[int], device: torch.device
) -> Generator[Progress, None, list[FloatArray]]:
    """One kernel estimate per support in `sizes`, progress counted over them all."""
    steps = [len(scale_sizes(size)) * ITERATIONS for size in sizes]
    kernels = []
    for index, size in enumerate(sizes):
        run = estimate_kernel(plane, size, device)
        while True:
            try:
                step = next(run)
            except StopIteration as stop:
                kernels.append(stop.value)
                break
            yield Progress(sum(steps[:index]) + step.done, sum(steps), step.message)
    return kernels


def estimate_kernel(plane: FloatArray, kernel_size: int, device: torch.device) -> KernelRun:
    """The blur kernel (kernel_size x kernel_size, centred, unit sum) of a grayscale plane."""
    import torch

    sizes = scale_sizes(kernel_size)
    kernel = np.zeros((sizes[0], sizes[0]), np.float32)
    kernel[sizes[0] // 2, sizes[0] // 2 - 1 : sizes[0] // 2 + 1] = 0.5
    steps = len(sizes) * ITERATIONS
    for level, size in enumerate(sizes):
        kernel = resize_kernel(kernel, size)
        blurred, interior = padded(downscaled(plane, size / kernel_size), size, device)
        weight, threshold = L0_WEIGHT_START, None
        for iteration in range(ITERATIONS):
            yield Progress(
                level * ITERATIONS + iteration,
                steps,
                f"Estimating the blur, up to {kernel_size} px, coarse to fine",
            )
            latent = l0_latent(blurred, torch.from_numpy(kernel).to(device), weight)
            edges, threshold = strong_edges(latent, interior, size, threshold)
            kernel = solve_kernel(blurred, edges, kernel)
            weight = max(weight / L0_WEIGHT_DECAY, L0_WEIGHT_MIN)
        kernel = centred(kernel)
    return kernel


def downscaled(plane: FloatArray, factor: float) -> FloatArray:
    """The plane resized by `factor` (area averaging), at least 8 px a side."""
    if factor >= 1:
        return plane
    shape = (max(8, round(plane.shape[1] * factor)), max(8, round(plane.shape[0] * factor)))
    return np.asarray(cv2.resize(plane, shape, interpolation=cv2.INTER_AREA), np.float32)


def padded(plane: FloatArray, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The plane mirrored out by at least `size` px to a fast FFT size, and the mask of its
    pixels at least size / 2 inside the original plane (where edges are trusted)."""
    import torch

    from studio.engine.ops._deblur_solvers import fast_padding

    height, width = plane.shape
    top, bottom = fast_padding(height, size)
    left, right = fast_padding(width, size)
    wide = np.pad(plane, ((top, bottom), (left, right)), mode="symmetric")
    tensor = torch.from_numpy(np.ascontiguousarray(wide, np.float32)).to(device)
    interior = torch.zeros_like(tensor, dtype=torch.bool)
    margin = size // 2
    interior[top + margin : top + height - margin, left + margin : left + width - margin] = True
    return tensor, interior


def resize_kernel(kernel: FloatArray, size: int) -> FloatArray:
    """The kernel resampled to size x size, positive and normalised."""
    if kernel.shape[0] != size:
        kernel = np.asarray(
            cv2.resize(kernel, (size, size), interpolation=cv2.INTER_LINEAR), np.float32
        )
    return _normalised(np.clip(kernel, 0.0, None))


def _normalised(kernel: FloatArray) -> FloatArray:
    total = float(kernel.sum())
    if total <= 0:
        kernel = np.zeros_like(kernel)
        kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] = 1.0
        return kernel
    return np.asarray(kernel / total, np.float32)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Circular forward differences along x and y."""
    import torch

    return torch.roll(x, -1, 1) - x, torch.roll(x, -1, 0) - x


def _otf(kernel: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    from studio.engine.ops._deblur_solvers import psf_to_otf

    return psf_to_otf(kernel, shape)


def _psf(spectrum: torch.Tensor, shape: tuple[int, int], size: int) -> torch.Tensor:
    """The centred size x size window of the inverse transform (adjoint of `_otf`)."""
    import torch

    full = torch.fft.irfft2(spectrum, s=shape)
    return torch.roll(full, (size // 2, size // 2), (0, 1))[:size, :size]


def l0_latent(blurred: torch.Tensor, kernel: torch.Tensor, weight: float) -> torch.Tensor:
    """argmin_x |k * x - y|^2 + weight |grad x|_0 by half-quadratic splitting (Xu 2013)."""
    import torch

    shape = (blurred.shape[0], blurred.shape[1])
    otf = _otf(kernel, shape)
    grad_x = _otf(torch.tensor([[1.0, -1.0]], device=blurred.device), shape)
    grad_y = _otf(torch.tensor([[1.0], [-1.0]], device=blurred.device), shape)
    data_num = otf.conj() * torch.fft.rfft2(blurred)
    data_den = otf.abs() ** 2
    grad_den = grad_x.abs() ** 2 + grad_y.abs() ** 2
    latent = blurred
    beta = 2 * weight
    while beta < L0_BETA_MAX:
        gx, gy = _gradients(latent)
        small = gx**2 + gy**2 < weight / beta
        gx, gy = gx.masked_fill(small, 0.0), gy.masked_fill(small, 0.0)
        # The divergence (adjoint of the forward differences) of the kept gradients.
        div = (torch.roll(gx, 1, 1) - gx) + (torch.roll(gy, 1, 0) - gy)
        spectrum = (data_num + beta * torch.fft.rfft2(div)) / (data_den + beta * grad_den)
        latent = torch.fft.irfft2(spectrum, s=shape)
        beta *= L0_BETA_RATE
    return latent


def strong_edges(
    latent: torch.Tensor, interior: torch.Tensor, kernel_size: int, threshold: float | None
) -> tuple[tuple[torch.Tensor, torch.Tensor], float]:
    """The latent gradients inside `interior` above a magnitude threshold (the others
    zeroed) and the next threshold. The first threshold keeps about EDGES_PER_BIN x
    kernel_size pixels in each of EDGE_BINS orientations (Cho and Lee 2009), so every
    direction constrains the kernel; each later call lowers it to admit more edges, unless
    the latent has flattened under it, when it is set afresh (no edges, no kernel)."""
    import torch

    gx, gy = _gradients(latent)
    power = (gx**2 + gy**2) * interior
    if threshold is None or not bool((power >= threshold).any()):
        angle = torch.atan2(gy, gx).remainder(math.pi)
        bins = (angle / (math.pi / EDGE_BINS)).long().clamp(0, EDGE_BINS - 1)
        keep = max(1, round(EDGES_PER_BIN * kernel_size))
        levels = []
        for b in range(EDGE_BINS):
            values = power[bins == b]
            if values.numel() >= keep:
                levels.append(float(torch.topk(values, keep).values[-1]))
        threshold = min(levels) if levels else 0.0
    small = (power < threshold) | ~interior
    return (gx.masked_fill(small, 0.0), gy.masked_fill(small, 0.0)), threshold / THRESHOLD_DECAY


def solve_kernel(
    blurred: torch.Tensor, edges: tuple[torch.Tensor, torch.Tensor], start: FloatArray
) -> FloatArray:
    """argmin_k sum |k * grad(latent) - grad(blurred)|^2 + KERNEL_WEIGHT |k|^2 over a
    kernel of `start`'s size, by conjugate gradients from `start`; then, with a sparse
    prior on the kernel (sum |k|^KERNEL_EXPONENT) by iteratively reweighted least squares;
    then positive, with faint values and small detached components removed, normalised."""
    import torch

    shape = (blurred.shape[0], blurred.shape[1])
    size = start.shape[0]
    latent_f = [torch.fft.rfft2(e) for e in edges]
    blurred_f = [torch.fft.rfft2(g) for g in _gradients(blurred)]
    normal = sum(lf.abs() ** 2 for lf in latent_f)
    rhs = _psf(sum(lf.conj() * bf for lf, bf in zip(latent_f, blurred_f, strict=True)), shape, size)
    gram = _Gram(normal, shape, size)
    diagonal = float(gram.diagonal)
    k = _conjugate_gradients(gram, rhs, torch.from_numpy(start).to(blurred.device), KERNEL_WEIGHT)
    if not float(k.max()) > 0:  # no edge explains the blur (or NaN): keep the kernel as it was
        return start
    for _ in range(KERNEL_IRLS if KERNEL_SPARSITY > 0 else 0):
        magnitude = k.clamp(min=KERNEL_EPSILON * float(k.max()))
        weights = KERNEL_WEIGHT + KERNEL_SPARSITY * diagonal * magnitude ** (KERNEL_EXPONENT - 2)
        k = _conjugate_gradients(gram, rhs, k.clamp(min=0.0), weights)
    return cleaned(k.cpu().numpy())


class _Gram:
    """The normal operator of the kernel's least squares, k -> crop(R * k), applied in the
    kernel's small domain: R is the edges' autocorrelation up to +-(size - 1) px."""

    def __init__(self, normal: torch.Tensor, shape: tuple[int, int], size: int) -> None:
        import torch

        span = 2 * size - 1
        full = torch.fft.irfft2(normal, s=shape)
        autocorrelation = torch.roll(full, (size - 1, size - 1), (0, 1))[:span, :span]
        self.size = size
        self.fft_size = 1 << (3 * size - 3).bit_length()
        self.spectrum = torch.fft.rfft2(autocorrelation, s=(self.fft_size, self.fft_size))
        self.diagonal = autocorrelation[size - 1, size - 1]

    def __call__(self, kernel: torch.Tensor) -> torch.Tensor:
        import torch

        n = self.fft_size
        product: torch.Tensor = torch.fft.irfft2(
            self.spectrum * torch.fft.rfft2(kernel, s=(n, n)), s=(n, n)
        )
        return product[self.size - 1 : 2 * self.size - 1, self.size - 1 : 2 * self.size - 1]


def _conjugate_gradients(
    gram: _Gram, rhs: torch.Tensor, start: torch.Tensor, weights: torch.Tensor | float
) -> torch.Tensor:
    """CG_ITERATIONS of conjugate gradients on (gram + diag(weights)) k = rhs from `start`."""

    def apply(k: torch.Tensor) -> torch.Tensor:
        return gram(k) + weights * k

    k = start
    residual = rhs - apply(k)
    direction = residual.clone()
    rho = float((residual * residual).sum())
    for _ in range(CG_ITERATIONS):
        if rho < 1e-12:
            break
        product = apply(direction)
        step = rho / max(float((direction * product).sum()), 1e-20)
        k = k + step * direction
        residual = residual - step * product
        rho, previous = float((residual * residual).sum()), rho
        direction = residual + (rho / previous) * direction
    return k


def cleaned(kernel: FloatArray) -> FloatArray:
    """Positive, without values under KERNEL_FLOOR of the peak nor 8-connected components
    holding less than COMPONENT_MIN_MASS of the total, normalised."""
    kernel = np.clip(kernel, 0.0, None)
    kernel[kernel < KERNEL_FLOOR * kernel.max()] = 0.0
    kernel = _normalised(kernel)
    labels, count = scipy.ndimage.label(kernel > 0, structure=np.ones((3, 3)))
    if count > 1:
        masses = scipy.ndimage.sum(kernel, labels, index=np.arange(1, count + 1))
        for label, mass in enumerate(masses, start=1):
            if mass < COMPONENT_MIN_MASS:
                kernel[labels == label] = 0.0
    return _normalised(kernel)


def centred(kernel: FloatArray) -> FloatArray:
    """The kernel shifted by whole pixels so that its centre of mass is at the centre
    (what falls off the edge is dropped)."""
    ys, xs = np.indices(kernel.shape)
    centre = kernel.shape[0] // 2
    dy = centre - round(float((ys * kernel).sum()))
    dx = centre - round(float((xs * kernel).sum()))
    shifted = scipy.ndimage.shift(kernel, (dy, dx), order=0, mode="constant", cval=0.0)
    return _normalised(np.asarray(shifted, np.float32))
