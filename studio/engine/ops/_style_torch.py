"""The painterly synthesis' per-pass colour matching and edge-preserving filter, on the
job's device, so the estimate stays there between passes.

Images are (3, H, W) sRGB tensors in [0, 1]. CIELAB is `_style_color`'s (the CIE formulas
with OpenCV's constants); histograms are matched per CIELAB channel with the
same quantiles and linear interpolation as NumPy's `quantile` and `interp`; the domain
transform's first-order recursions (Gastal & Oliveira 2011) run as parallel scans on a GPU.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from studio.core.image import FloatArray
from studio.engine.ops._style_color import (
    _LAB_EPSILON,
    _LAB_KAPPA,
    _QUANTILES,
    _RGB_TO_XYZ,
    _STATS_PIXELS,
    _WHITE,
    _XYZ_TO_RGB,
)

if TYPE_CHECKING:
    import torch


def _matrix(values: npt.NDArray[np.float32], device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(values).to(device)


def _apply(matrix: npt.NDArray[np.float32], image: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.einsum("ij,jhw->ihw", _matrix(matrix, image.device), image)


def to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (3, H, W) to CIELAB (L* in [0, 100]), as `_style_color.to_lab`."""
    import torch

    x = rgb.clamp(0.0, 1.0)
    linear = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    white = _matrix(_WHITE, rgb.device)[:, None, None]
    t = _apply(_RGB_TO_XYZ, linear) / white
    f = torch.where(t > _LAB_EPSILON, t.clamp(min=0.0) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    lightness = torch.where(t[1] > _LAB_EPSILON, 116.0 * f[1] - 16.0, _LAB_KAPPA * t[1])
    return torch.stack([lightness, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])])


def to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB to sRGB in [0, 1]; out-of-gamut colours move towards the grey of the same
    luminance just far enough to fit (as `_style_color.to_rgb`)."""
    import torch

    fy = (lab[0].clamp(0.0, 100.0) + 16.0) / 116.0
    f = torch.stack([fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0])
    white = _matrix(_WHITE, lab.device)[:, None, None]
    xyz = torch.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * white
    linear = _apply(_XYZ_TO_RGB, xyz)
    grey = xyz[1:2].clamp(0.0, 1.0)
    excess = linear - grey
    room = torch.where(
        excess > 0, (1.0 - grey) / excess, torch.where(excess < 0, -grey / excess, 1.0)
    )
    keep = torch.nan_to_num(room.amin(dim=0, keepdim=True), nan=1.0).clamp(0.0, 1.0)
    encoded = (grey + keep * excess).clamp(0.0, 1.0)
    return torch.where(encoded <= 0.0031308, 12.92 * encoded, 1.055 * encoded ** (1 / 2.4) - 0.055)


def quantiles(lab: torch.Tensor) -> torch.Tensor:
    """(_QUANTILES, 3) quantiles of each channel of a regular subsample of at most about
    `_STATS_PIXELS` pixels (as `_style_color.quantiles(sample_lab(...))`)."""
    import torch

    flat = lab.reshape(3, -1)
    flat = flat[:, :: max(1, flat.shape[1] // _STATS_PIXELS)]
    levels = torch.linspace(0.0, 1.0, _QUANTILES, device=lab.device)
    return torch.quantile(flat, levels, dim=1)


def _interp(x: torch.Tensor, points: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """NumPy's `interp` for increasing `points`: linear between them, constant outside."""
    import torch

    upper = torch.searchsorted(points, x.contiguous(), right=True).clamp(1, points.numel() - 1)
    x0, x1 = points[upper - 1], points[upper]
    y0, y1 = values[upper - 1], values[upper]
    t = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
    return y0 + t * (y1 - y0)


def match_histograms(rgb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`rgb` with each CIELAB channel given the distribution of `target` (_QUANTILES, 3)."""
    import torch

    lab = to_lab(rgb)
    source = quantiles(lab)
    matched = []
    for c in range(3):
        points = source[:, c]
        first = torch.ones_like(points, dtype=torch.bool)
        first[1:] = points[1:] > points[:-1]  # repeated quantiles: keep the first, as np.unique
        matched.append(_interp(lab[c], points[first], target[first, c]))
    return to_rgb(torch.stack(matched))


def _scan(feedback: torch.Tensor, image: torch.Tensor, largest: float) -> torch.Tensor:
    """y[n] = image[n] + feedback[n - 1] * (y[n - 1] - image[n]) along the last axis, by
    recursive doubling: whole-image steps instead of n small ones. Feedback of at most
    `largest` (< 1) fades below float32 resolution within `_reach` samples, so the doubling
    stops there."""
    import torch

    a = torch.nn.functional.pad(feedback, (1, 0))  # nothing feeds the first sample
    b = (1.0 - a) * image
    step, reach = 1, min(b.shape[-1], _reach(largest))
    while step < reach:
        b[..., step:] += a[..., step:] * b[..., :-step]  # the product is made before the add
        a[..., step:] = a[..., step:] * a[..., :-step]
        step *= 2
    return b


def _reach(largest: float) -> int:
    """Samples after which a product of feedbacks of at most `largest` is below 1e-9."""
    return 1 << max(0, math.ceil(math.log2(max(1.0, math.log(1e-9) / math.log(largest)))))


def _recursive_pass(image: torch.Tensor, feedback: torch.Tensor, largest: float) -> torch.Tensor:
    """First-order recursive filter along the last axis, forwards then backwards."""
    forwards = _scan(feedback, image, largest)
    return _scan(feedback.flip(-1), forwards.flip(-1), largest).flip(-1)


def domain_transform(
    image: torch.Tensor, sigma_s: float, sigma_r: float, iterations: int
) -> torch.Tensor:
    """Edge-preserving smoothing of (3, H, W): the recursive-filter domain transform. Its
    recursions run where they are fastest: as parallel scans on a GPU, as sequential loops
    in NumPy on a CPU (a scan does log2(n) times the work, 1-2.5x slower there, measured)."""
    import torch

    if image.device.type != "cpu":
        return scanned_domain_transform(image, sigma_s, sigma_r, iterations)
    rows = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    smoothed = sequential_domain_transform(rows, sigma_s, sigma_r, iterations)
    return torch.from_numpy(np.ascontiguousarray(smoothed.transpose(2, 0, 1)))


def _feedback_base(sigma_s: float, iterations: int, i: int) -> float:
    """The recursion's feedback for unit distance in iteration `i` (Gastal & Oliveira)."""
    sigma = sigma_s * math.sqrt(3.0) * 2 ** (iterations - i - 1) / math.sqrt(4**iterations - 1)
    return math.exp(-math.sqrt(2.0) / sigma)


def scanned_domain_transform(
    image: torch.Tensor, sigma_s: float, sigma_r: float, iterations: int
) -> torch.Tensor:
    """`domain_transform` by parallel scans (any device)."""
    ratio = sigma_s / sigma_r
    dx = 1.0 + ratio * (image[:, :, 1:] - image[:, :, :-1]).abs().sum(dim=0)  # (H, W-1)
    dy = 1.0 + ratio * (image[:, 1:, :] - image[:, :-1, :]).abs().sum(dim=0)  # (H-1, W)
    out = image
    for i in range(iterations):
        a = _feedback_base(sigma_s, iterations, i)
        out = _recursive_pass(out, a**dx, a)  # dx, dy >= 1: feedback at most a
        out = _recursive_pass(out.transpose(1, 2), (a**dy).T, a).transpose(1, 2)
    return out


def sequential_domain_transform(
    image: FloatArray, sigma_s: float, sigma_r: float, iterations: int
) -> FloatArray:
    """`domain_transform` of (H, W, 3) in NumPy, one row (then column) at a time."""
    ratio = sigma_s / sigma_r
    dx = 1.0 + ratio * np.abs(np.diff(image, axis=1)).sum(axis=2)  # (H, W-1)
    dy = 1.0 + ratio * np.abs(np.diff(image, axis=0)).sum(axis=2)  # (H-1, W)
    rows = np.ascontiguousarray(image, dtype=np.float32)
    for i in range(iterations):
        a = _feedback_base(sigma_s, iterations, i)
        columns = _sequential_pass(np.ascontiguousarray(rows.transpose(1, 0, 2)), a**dx.T)
        rows = _sequential_pass(np.ascontiguousarray(columns.transpose(1, 0, 2)), a**dy)
    return rows


def _sequential_pass(image: FloatArray, feedback: npt.NDArray[np.floating[Any]]) -> FloatArray:
    """First-order recursive filter along axis 0, forwards then backwards, in place."""
    weight = feedback.astype(np.float32)[..., None]
    for y in range(1, image.shape[0]):
        image[y] += weight[y - 1] * (image[y - 1] - image[y])
    for y in range(image.shape[0] - 2, -1, -1):
        image[y] += weight[y] * (image[y + 1] - image[y])
    return image
