"""Colour hints from a reference photo (after Welsh, Ashikhmin & Mueller 2002 and Gupta et al.
2012): pixels of the grey photo take the colour of the reference pixels whose neighbourhood
looks alike, then the optimisation solver spreads those hints along the photo's edges.

The reference's luminance is first remapped to the grey photo's mean and spread. Each pixel is
described by its brightness and the mean and spread of brightness around it at two scales.
The grey photo is sampled on a jittered grid; each sample takes the distance-weighted mean
chroma of its nearest reference samples in that feature space, and samples whose neighbours
disagree on colour are dropped.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.spatial import cKDTree

from studio.core.image import FloatArray

_NEIGHBOURS = 12
_REFERENCE_SAMPLES = 40_000
_SCALES = (2, 6)
_DISAGREEMENT = 0.06


def features(y: FloatArray) -> FloatArray:
    """(H, W, 5) per-pixel features: brightness, then local mean and spread at each scale."""
    columns = [cv2.GaussianBlur(y, (0, 0), 1.0)]
    for radius in _SCALES:
        size = (2 * radius + 1, 2 * radius + 1)
        mean = cv2.boxFilter(y, -1, size, borderType=cv2.BORDER_REFLECT)
        square = cv2.boxFilter(y * y, -1, size, borderType=cv2.BORDER_REFLECT)
        columns += [mean, np.sqrt(np.maximum(square - mean * mean, 0.0))]
    return np.stack(columns, axis=-1).astype(np.float32)


def jittered_grid(shape: tuple[int, int], spacing: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 2) row, column positions: one random pixel in each `spacing`-sized cell."""
    height, width = shape
    rows, cols = np.mgrid[0:height:spacing, 0:width:spacing]
    rows = rows.ravel() + rng.integers(0, spacing, rows.size)
    cols = cols.ravel() + rng.integers(0, spacing, cols.size)
    keep = (rows < height) & (cols < width)
    return np.stack([rows[keep], cols[keep]], axis=1)


def reference_hints(
    y: FloatArray, reference_y: FloatArray, reference_chroma: FloatArray, spacing: int, seed: int
) -> tuple[np.ndarray, FloatArray]:
    """Hint mask (H, W) bool and hint chroma (H, W, 2) for the grey `y`, from a reference's
    luminance (h, w) and chroma (h, w, 2), scaled first to about as many pixels as `y`."""
    rng = np.random.default_rng(seed)
    scaled = _scaled_like(np.dstack([reference_y, reference_chroma]), y.shape)
    ref_y, ref_chroma = scaled[..., 0], scaled[..., 1:]
    ref_y = (ref_y - ref_y.mean()) * (y.std() / max(float(ref_y.std()), 1e-4)) + y.mean()
    ref_spacing = max(1, math.isqrt(ref_y.size // _REFERENCE_SAMPLES))
    ref_at = jittered_grid(ref_y.shape, ref_spacing, rng)
    ref_features = features(ref_y.astype(np.float32))[ref_at[:, 0], ref_at[:, 1]]
    weights = 1.0 / (ref_features.std(axis=0) + 1e-3)
    tree = cKDTree(ref_features * weights)
    at = jittered_grid(y.shape, spacing, rng)
    wanted = features(y.astype(np.float32))[at[:, 0], at[:, 1]] * weights
    k = min(_NEIGHBOURS, len(ref_at))
    distance, index = tree.query(wanted, k=k)
    distance, index = distance.reshape(len(at), k), index.reshape(len(at), k)
    chroma_of = ref_chroma[ref_at[:, 0], ref_at[:, 1]][index]  # (N, k, 2)
    weight = 1.0 / (distance + 1e-3)
    weight /= weight.sum(axis=1, keepdims=True)
    chroma = (chroma_of * weight[..., None]).sum(axis=1)
    spread = np.sqrt(((chroma_of - chroma[:, None]) ** 2 * weight[..., None]).sum(axis=(1, 2)))
    agreed = spread < _DISAGREEMENT
    mask = np.zeros(y.shape, bool)
    hint_chroma = np.zeros((*y.shape, 2), np.float32)
    rows, cols = at[agreed, 0], at[agreed, 1]
    mask[rows, cols] = True
    hint_chroma[rows, cols] = chroma[agreed]
    return mask, hint_chroma


def _scaled_like(reference: FloatArray, shape: tuple[int, int]) -> FloatArray:
    factor = math.sqrt(shape[0] * shape[1] / (reference.shape[0] * reference.shape[1]))
    if abs(factor - 1.0) < 0.05:
        return reference
    size = (max(1, round(reference.shape[1] * factor)), max(1, round(reference.shape[0] * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(reference, size, interpolation=interpolation), np.float32)
