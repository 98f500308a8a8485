"""Painterly style transfer by texture synthesis (Elad & Milanfar, "Style Transfer Via
Texture Synthesis", IEEE TIP 2017), on torch so that it runs on CUDA when present.

From coarse to fine scales, and from large to small patches at each scale, the estimate X
is repeatedly
1. cut into overlapping patches, each replaced by its nearest style patch (searched on
   low-frequency DCT coefficients, a fixed stand-in for the paper's PCA, in chunks, so
   memory stays bounded);
2. re-assembled by robust aggregation: iteratively reweighted least squares minimising
   the sum of ||patch - match||^0.8, so a few bad matches do not smear the result;
3. fused with the content, more strongly on the content's edges (its structure);
4. given the style's colour distribution (histogram matching in CIELAB);
5. smoothed with an edge-preserving domain transform (Gastal & Oliveira 2011), which
   removes aggregation noise but keeps strokes and edges.
No pretrained weights are involved.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from studio.core.image import FloatArray, luminance
from studio.core.protocol import Progress
from studio.engine.ops import _style_color as colour
from studio.engine.ops import _style_torch as colours

if TYPE_CHECKING:
    import torch

_DB_FLOATS = 24_000_000  # style patch database (floats): bounds memory per patch size
_DISTANCE_FLOATS = 16_000_000  # query x database distances computed at once
_DB_PATCHES = 12_000
_DCT_FREQUENCIES = 4  # per axis: the search compares 3 x 4 x 4 coefficients per patch
_ROBUST_POWER = 0.8
_IRLS_STEPS = 3
_GAP_FRACTION = 0.75  # patch grid step as a fraction of the patch size
_INIT_NOISE = 0.2
_FLAT_WEIGHT = 0.05  # content weight in flat areas, relative to edges: texture goes there
_DT_SIGMA_S = 5.0
_DT_SIGMA_R = 0.2
_DT_ITERATIONS = 3


@dataclass(frozen=True)
class SynthesisSettings:
    size: tuple[int, int]  # working (height, width)
    scales: int
    patch_sizes: tuple[int, ...]
    iterations: int
    content_weight: float
    style_scale: float
    seed: int


def total_steps(settings: SynthesisSettings) -> int:
    return sum(
        len(_patch_sizes(settings, _level_size(settings, level))) * settings.iterations
        for level in range(settings.scales)
    )


def _level_size(settings: SynthesisSettings, level: int) -> tuple[int, int]:
    """(height, width) of pyramid level `level` (0 = coarsest)."""
    factor = 2 ** (settings.scales - 1 - level)
    height, width = settings.size
    return max(8, round(height / factor)), max(8, round(width / factor))


def _patch_sizes(settings: SynthesisSettings, size: tuple[int, int]) -> list[int]:
    return [p for p in settings.patch_sizes if p <= min(size) // 2] or [min(size) // 2 | 1]


def synthesize(
    content: FloatArray, style: FloatArray, settings: SynthesisSettings, device: torch.device
) -> Generator[Progress, None, FloatArray]:
    """Content and style RGB in [0, 1] (content at the working size) -> stylised RGB."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(settings.seed)
    target = colours.quantiles(colours.to_lab(_tensor(style, device)))
    total, done = total_steps(settings), 0
    estimate: torch.Tensor | None = None
    for level in range(settings.scales):
        height, width = _level_size(settings, level)
        content_l = _resize(content, width, height)
        style_long = max(8, round(settings.style_scale * max(height, width)))
        style_l = colour.shrink(style, style_long) if max(style.shape[:2]) > style_long else style
        content_t = _tensor(content_l, device)
        weight = _tensor(_content_weight(content_l, settings.content_weight), device)
        if estimate is None:
            start = colours.match_histograms(content_t, target)
            noise = torch.randn((3, height, width), generator=generator) * _INIT_NOISE
            estimate = start + noise.to(device)
        else:
            estimate = _upsample(estimate, height, width)
        for patch in _patch_sizes(settings, (height, width)):
            database = PatchDatabase(_tensor(_holding_a_patch(style_l, patch), device), patch)
            gap = max(1, round(patch * _GAP_FRACTION))
            for iteration in range(settings.iterations):
                offset = torch.randint(0, gap, (2,), generator=generator).tolist()
                estimate = database.aggregate(estimate, gap, (offset[0], offset[1]))
                estimate = (estimate + weight * content_t) / (1.0 + weight)
                estimate = _colour_and_smooth(estimate, target)
                done += 1
                yield Progress(
                    done,
                    total,
                    f"Painting: scale {level + 1}/{settings.scales}, {patch} px strokes, "
                    f"pass {iteration + 1}/{settings.iterations}",
                    preview=_array(estimate),
                )
            del database
    assert estimate is not None
    return _array(estimate)


class PatchDatabase:
    """Every `stride`-th patch of the style image, and their low-frequency coefficients."""

    def __init__(self, style: torch.Tensor, patch: int) -> None:
        import torch.nn.functional as F

        channels, height, width = style.shape
        positions = max(1, (height - patch + 1) * (width - patch + 1))
        dim = channels * patch * patch
        count = min(_DB_PATCHES, _DB_FLOATS // dim)
        stride = max(1, math.ceil(math.sqrt(positions / count)))
        self.patch = patch
        self.patches = F.unfold(style[None], patch, stride=stride)[0].T.contiguous()  # (N, D)
        self.basis = _dct_basis(patch, channels, style.device)  # (D, q)
        self.projected = self.patches @ self.basis  # (N, q)
        self.norms = (self.projected**2).sum(dim=1)

    def nearest(self, queries: torch.Tensor) -> torch.Tensor:
        """Index of the nearest database patch for each (L, D) query."""
        import torch

        projected = queries @ self.basis
        chunk = max(1, _DISTANCE_FLOATS // self.projected.shape[0])
        found = [
            torch.argmin(self.norms[None, :] - 2.0 * block @ self.projected.T, dim=1)
            for block in torch.split(projected, chunk)
        ]
        return torch.cat(found)

    def aggregate(self, estimate: torch.Tensor, gap: int, offset: tuple[int, int]) -> torch.Tensor:
        """Replace each patch of `estimate` (3, H, W) by its match and re-assemble robustly."""
        import torch
        import torch.nn.functional as F

        _, height, width = estimate.shape
        padded, crop = _pad_to_grid(estimate, self.patch, gap, offset)
        size = padded.shape[1:]

        def unfold(image: torch.Tensor) -> torch.Tensor:
            return F.unfold(image[None], self.patch, stride=gap)[0].T  # (L, D)

        def fold(patches: torch.Tensor) -> torch.Tensor:
            return F.fold(patches.T[None], size, self.patch, stride=gap)[0]

        matches = self.patches[self.nearest(unfold(padded))]
        ones = torch.ones_like(matches)
        result = fold(matches) / fold(ones)
        for _ in range(_IRLS_STEPS):
            residual = ((unfold(result) - matches) ** 2).sum(dim=1, keepdim=True)
            weights = (residual + 1e-4) ** ((_ROBUST_POWER - 2.0) / 2.0)
            result = fold(weights * matches) / fold(weights * ones)
        top, left = crop
        return result[:, top : top + height, left : left + width].contiguous()


def _dct_basis(patch: int, channels: int, device: torch.device) -> torch.Tensor:
    """(D, channels * k^2) orthonormal basis: the k x k lowest 2-D DCT frequencies per channel.

    For natural images the principal components of patches are close to these low
    frequencies, so this is a PCA without an eigen-decomposition per style.
    """
    import torch

    k = min(_DCT_FREQUENCIES, patch)
    x = np.arange(patch)
    cosines = np.stack([np.cos(np.pi * (x + 0.5) * u / patch) for u in range(k)])  # (k, p)
    cosines /= np.linalg.norm(cosines, axis=1, keepdims=True)
    planes = np.einsum("ui,vj->uvij", cosines, cosines).reshape(k * k, patch * patch)
    basis = np.zeros((channels * patch * patch, channels * k * k), dtype=np.float32)
    for c in range(channels):
        rows = slice(c * patch * patch, (c + 1) * patch * patch)
        basis[rows, c * k * k : (c + 1) * k * k] = planes.T
    return torch.from_numpy(basis).to(device)


def _pad_to_grid(
    image: torch.Tensor, patch: int, gap: int, offset: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad so a patch grid with step `gap`, shifted by `offset`, covers every pixel."""
    import torch.nn.functional as F

    _, height, width = image.shape
    top, left = offset

    def after(length: int, before: int) -> int:
        span = max(length + before, patch)
        return (-(span - patch)) % gap + span - length - before

    bottom, right = after(height, top), after(width, left)
    padded = F.pad(image[None], (left, right, top, bottom), mode="replicate")[0]
    return padded, (top, left)


def _colour_and_smooth(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Steps 4 and 5: the style's colour distribution, then edge-preserving smoothing."""
    matched = colours.match_histograms(estimate.clamp(0.0, 1.0), target)
    return colours.domain_transform(matched, _DT_SIGMA_S, _DT_SIGMA_R, _DT_ITERATIONS)


def _content_weight(content: FloatArray, strength: float) -> FloatArray:
    """Where the content must show through: its edges, softly spread (H, W, 1)."""
    grey = luminance(content)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    edges = cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), 2.0)
    edges = np.clip(edges / max(float(np.percentile(edges, 95)), 1e-6), 0.0, 1.0)
    return np.asarray(
        strength * (_FLAT_WEIGHT + (1.0 - _FLAT_WEIGHT) * edges)[..., None], dtype=np.float32
    )


def _holding_a_patch(style: FloatArray, patch: int) -> FloatArray:
    """`style`, enlarged where it is too small for one `patch` (a small style image, or a
    small stroke scale at a coarse level)."""
    height, width = style.shape[:2]
    factor = patch / min(height, width)
    if factor <= 1.0:
        return style
    return _resize(style, math.ceil(width * factor), math.ceil(height * factor))


def _resize(pixels: FloatArray, width: int, height: int) -> FloatArray:
    out = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    return np.asarray(out.reshape(height, width, -1), dtype=np.float32)


def _upsample(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    import torch.nn.functional as F

    return F.interpolate(image[None], (height, width), mode="bilinear", align_corners=False)[0]


def _tensor(pixels: FloatArray, device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).to(device)


def _array(image: torch.Tensor) -> FloatArray:
    pixels = image.detach().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(pixels, dtype=np.float32)
