"""Collaborative filtering (CBM3D-style) in PyTorch, vectorised over all reference blocks.

Dabov, Foi, Katkovnik and Egiazarian (2007): similar blocks are stacked into 3-D groups,
shrunk jointly in a separable transform domain (2-D DCT of each block, Haar across the stack)
and the overlapping estimates are averaged with weights. Stage one hard-thresholds the noisy
groups to get a basic estimate; stage two matches blocks on that estimate and applies an
empirical Wiener filter to the noisy groups. Colour images are filtered in an orthonormal
opponent colour space with block matching on the luminance channel only.

Every block's 2-D transform is computed once; aggregation happens in the transform domain
(the inverse DCT is linear) so each image position is inverse-transformed only once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

_OPPONENT = np.array(
    [
        [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
        [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
        [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)],
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Stage:
    """Block size, reference step, search radius and group size of one stage."""

    block: int = 8
    step: int = 3
    radius: int = 10
    group: int = 16


HARD = Stage(block=8, step=4, radius=8, group=16)
WIENER = Stage(block=8, step=4, radius=8, group=16)
HARD_THRESHOLD = 2.7
REF_CHUNK = {"cpu": 512, "cuda": 4096}  # reference blocks per batch: cache-sized on the CPU
BYTES_PER_PIXEL = 5 * 1024  # working memory per tile pixel (issue #18's estimate)


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (rows are basis vectors)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    mat = np.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    mat[0] /= math.sqrt(2.0)
    return mat.astype(np.float32)


def haar_matrix(n: int) -> np.ndarray:
    """Orthonormal Haar matrix of size n (a power of two), rows are basis vectors."""
    mat = np.array([[1.0]])
    while mat.shape[0] < n:
        size = mat.shape[0]
        top = np.kron(mat, [1.0, 1.0])
        bottom = np.kron(np.eye(size), [1.0, -1.0])
        mat = np.vstack([top, bottom]) / math.sqrt(2.0)
    return mat.astype(np.float32)


def _opponent(size: int) -> np.ndarray:
    return _OPPONENT


def _kaiser(block: int) -> np.ndarray:
    window = np.kaiser(block, 2.0)
    return np.outer(window, window).astype(np.float32)


def _pad_to_grid(image: torch.Tensor, stage: Stage) -> torch.Tensor:
    """Reflect-pad (C, H, W) so reference blocks on the step grid reach every border."""
    import torch.nn.functional as F

    _, height, width = image.shape
    pad_h = (-(height - stage.block)) % stage.step
    pad_w = (-(width - stage.block)) % stage.step
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
    return F.pad(image[None], (0, pad_w, 0, pad_h), mode=mode)[0]


def _box_mean(sq: torch.Tensor, block: int, step: int) -> torch.Tensor:
    """Mean of (H, D, W) over block x block windows on the step grid, as (D, H' * W').

    Separable: along W on the contiguous layout, then along H after one small transpose.
    """
    import torch.nn.functional as F

    height, depth, width = sq.shape
    along_w = F.avg_pool1d(sq.reshape(height * depth, 1, width), block, step)
    pooled_w = along_w.shape[-1]
    by_row = along_w.reshape(height, depth * pooled_w).T.contiguous()
    along_h = F.avg_pool1d(by_row[:, None, :], block, step)
    pooled_h = along_h.shape[-1]
    return along_h.reshape(depth, pooled_w, pooled_h).transpose(1, 2).reshape(depth, -1)


def match_blocks(guide: torch.Tensor, stage: Stage) -> torch.Tensor:
    """For each reference block on the step grid, the linear indices of its `group` nearest
    blocks (squared distance on the (H, W) guide) within the search radius, nearest first.

    Indices address the (H - b + 1) x (W - b + 1) grid of all block positions.
    """
    import torch
    import torch.nn.functional as F

    height, width = guide.shape
    b, s, r = stage.block, stage.step, stage.radius
    padded = F.pad(guide[None, None], (r, r, r, r), value=float("nan"))[0, 0]
    ref_rows = torch.arange(0, height - b + 1, s, device=guide.device)
    ref_cols = torch.arange(0, width - b + 1, s, device=guide.device)
    offsets = torch.arange(-r, r + 1, device=guide.device)
    distances = []
    for dy in range(-r, r + 1):
        band = padded[r + dy : r + dy + height].unfold(1, width, 1)  # (H, 2r+1, W) view
        sq = (band - guide[:, None, :]).square_()
        distances.append(_box_mean(sq, b, s))
    dist = torch.nan_to_num(torch.cat(distances), nan=float("inf")).T
    group = min(stage.group, dist.shape[1])
    best = torch.topk(dist, group, dim=1, largest=False).indices
    rows = ref_rows.repeat_interleave(len(ref_cols))[:, None] + offsets[best // (2 * r + 1)]
    cols = ref_cols.repeat(len(ref_rows))[:, None] + offsets[best % (2 * r + 1)]
    return rows * (width - b + 1) + cols


@functools.cache
def _dct2_matrix(block: int, device: torch.device) -> torch.Tensor:
    """The 2-D DCT of a flattened block as one (b*b, b*b) matrix: vec(D X D^T) = K vec(X).
    Made once per device, like the other constants."""
    import torch

    dct = dct_matrix(block)
    return torch.from_numpy(np.kron(dct, dct)).to(device)


@functools.cache
def _constant(name: str, size: int, device: torch.device) -> torch.Tensor:
    """The Kaiser window, Haar matrix or opponent colour matrix on `device`, made once."""
    import torch

    makers = {"kaiser": _kaiser, "haar": haar_matrix, "opponent": _opponent}
    return torch.from_numpy(makers[name](size)).to(device)


def block_spectra(image: torch.Tensor, block: int) -> torch.Tensor:
    """2-D DCT of every block of (C, H, W): shape (positions, C, block*block)."""
    image = image.contiguous()
    channels, height, width = image.shape
    rows, cols = height - block + 1, width - block + 1
    stride_c, stride_y, stride_x = image.stride()
    blocks = image.as_strided(
        (rows, cols, channels, block, block), (stride_y, stride_x, stride_c, stride_y, stride_x)
    ).reshape(rows * cols * channels, block * block)
    spectra = blocks @ _dct2_matrix(block, image.device).T
    return spectra.reshape(rows * cols, channels, block * block)


def _aggregate_to_image(
    numerator: torch.Tensor, weights: torch.Tensor, shape: tuple[int, int], block: int
) -> torch.Tensor:
    """Inverse-DCT the per-position weighted spectra, window them and fold into (C, H, W)."""
    import torch
    import torch.nn.functional as F

    positions, channels, _ = numerator.shape
    kaiser = _constant("kaiser", block, numerator.device).reshape(-1)
    inverse = _dct2_matrix(block, numerator.device) * kaiser[None, :]
    by_channel = numerator.reshape(positions, -1).T.contiguous()  # (C*b*b, L), one transpose
    pixels = torch.matmul(inverse.T, by_channel.reshape(channels, block * block, positions))
    weight_patches = (weights.T.contiguous()[:, None, :] * kaiser[None, :, None]).contiguous()
    num = F.fold(pixels, shape, block)
    den = F.fold(weight_patches, shape, block)
    return num[:, 0] / den[:, 0].clamp_min(1e-12)


def _collaborate(
    noisy: torch.Tensor,
    guide_spectra: torch.Tensor | None,
    matches: torch.Tensor,
    sigma: float,
    group: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink every group and accumulate the weighted spectra per block position.

    With `guide_spectra` None the groups are hard-thresholded, otherwise Wiener-filtered with
    the guide (basic estimate) as the oracle.
    """
    import torch

    haar = _constant("haar", group, noisy.device)
    positions, channels, coeffs_per_block = noisy.shape
    flat_noisy = noisy.reshape(positions, channels * coeffs_per_block)
    flat_guide = None if guide_spectra is None else guide_spectra.reshape(flat_noisy.shape)
    numerator = torch.zeros_like(flat_noisy)
    weights = torch.zeros((positions, channels), device=noisy.device, dtype=noisy.dtype)
    variance = sigma * sigma
    chunk = REF_CHUNK.get(noisy.device.type, REF_CHUNK["cpu"])
    for start in range(0, matches.shape[0], chunk):
        index = matches[start : start + chunk]
        coeffs = haar @ flat_noisy[index]
        if flat_guide is None:
            keep = coeffs.abs() > HARD_THRESHOLD * sigma
            keep[:, 0, 0::coeffs_per_block] = True
            coeffs *= keep
            energy = keep.view(len(index), -1, channels, coeffs_per_block)
            energy = torch.count_nonzero(energy, dim=(1, 3)).to(noisy.dtype)
        else:
            oracle = (haar @ flat_guide[index]) ** 2
            shrink = oracle / (oracle + variance)
            coeffs *= shrink
            energy = (shrink**2).reshape(len(index), -1, channels, coeffs_per_block)
            energy = energy.sum(dim=(1, 3))
        group_weight = 1.0 / (variance * energy.clamp_min(1.0 / group))
        estimate = (haar.T @ coeffs).reshape(len(index), group, channels, coeffs_per_block)
        estimate = estimate * group_weight[:, None, :, None]
        flat_index = index.reshape(-1)
        numerator.index_add_(0, flat_index, estimate.reshape(-1, channels * coeffs_per_block))
        weights.index_add_(0, flat_index, group_weight.repeat_interleave(group, dim=0))
    return numerator.reshape(noisy.shape), weights


def _stage(
    image: torch.Tensor, guide: torch.Tensor | None, sigma: float, stage: Stage
) -> torch.Tensor:
    matches = match_blocks((guide if guide is not None else image)[0], stage)
    noisy = block_spectra(image, stage.block)
    guide_spectra = block_spectra(guide, stage.block) if guide is not None else None
    group = min(stage.group, matches.shape[1])
    group = 1 << (group.bit_length() - 1)
    numerator, weights = _collaborate(noisy, guide_spectra, matches[:, :group], sigma, group)
    shape = (int(image.shape[1]), int(image.shape[2]))
    return _aggregate_to_image(numerator, weights, shape, stage.block)


def cbm3d(pixels: np.ndarray, sigma: float, device: torch.device) -> np.ndarray:
    """Denoise (H, W, C) float32 pixels with white Gaussian noise of standard deviation
    `sigma` (same units as the pixels). Returns (H, W, C) float32."""
    import torch

    height, width, channels = pixels.shape
    if sigma <= 0 or min(height, width) < HARD.block:
        return pixels.copy()
    with torch.inference_mode():
        image = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(device)
        image = image.permute(2, 0, 1)
        opponent = _constant("opponent", 3, device)
        if channels == 3:
            image = torch.einsum("ij,jhw->ihw", opponent, image)
        padded = _pad_to_grid(image, HARD)
        basic = _stage(padded, None, sigma, HARD)
        final = _stage(padded, basic, sigma, WIENER)[:, :height, :width]
        if channels == 3:
            final = torch.einsum("ji,jhw->ihw", opponent, final)
        return final.permute(1, 2, 0).contiguous().cpu().numpy()
