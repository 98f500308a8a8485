"""Blind estimation of additive white Gaussian noise: the wavelet MAD estimator.

Donoho and Johnstone's robust estimator: the finest diagonal wavelet sub-band of a natural
image is almost all noise, so its median absolute value divided by 0.6745 estimates the noise
standard deviation. We use the Daubechies-2 wavelet (4 taps, closed form), which leaks less
image structure into that band than Haar.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from studio.core.image import FloatArray

_S3 = math.sqrt(3.0)
_DB2_LOW = np.array([1 + _S3, 3 + _S3, 3 - _S3, 1 - _S3], dtype=np.float64) / (4 * math.sqrt(2.0))
_DB2_HIGH = np.array([(-1) ** k * _DB2_LOW[3 - k] for k in range(4)], dtype=np.float32)
_MAD_TO_SIGMA = 1.0 / 0.6745
_MAX_SAMPLES = 4_000_000
SMOOTH_FRACTION = 0.25


def diagonal_detail(plane: FloatArray) -> FloatArray:
    """The finest diagonal (HH) Daubechies-2 sub-band of a 2-D plane, sub-sampled by two."""
    filtered = cv2.sepFilter2D(
        plane, cv2.CV_32F, _DB2_HIGH, _DB2_HIGH, anchor=(0, 0), borderType=cv2.BORDER_REFLECT
    )
    return np.asarray(filtered[: plane.shape[0] - 3 : 2, : plane.shape[1] - 3 : 2])


MIN_SIDE = 8


def _flat_detail(plane: FloatArray) -> FloatArray:
    """Diagonal detail coefficients from the flattest SMOOTH_FRACTION of the plane: texture
    and edges leak into the sub-band, so coefficients where the pre-smoothed image has strong
    gradients are left out (smoothing removes the noise from that choice)."""
    detail = diagonal_detail(plane)
    smooth = cv2.GaussianBlur(plane, (0, 0), 2.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    structure = (np.abs(gx) + np.abs(gy))[1 : plane.shape[0] - 2 : 2, 1 : plane.shape[1] - 2 : 2]
    structure = structure[: detail.shape[0], : detail.shape[1]]
    limit = np.quantile(structure, SMOOTH_FRACTION)
    return np.asarray(detail[structure <= limit])


def estimate_sigma(pixels: FloatArray) -> float:
    """Noise standard deviation of (H, W, C) pixels, in the pixels' own units.

    Each channel is estimated separately and the channels' median is returned. Large images
    are estimated on an evenly strided subset of rows to bound the cost. Pictures too small
    to hold a single wavelet coefficient have no measurable noise: 0.
    """
    height = pixels.shape[0]
    if min(pixels.shape[:2]) < MIN_SIDE:
        return 0.0
    stride = max(1, math.ceil(pixels.shape[0] * pixels.shape[1] / _MAX_SAMPLES))
    estimates = []
    for channel in range(pixels.shape[2]):
        plane = np.ascontiguousarray(pixels[..., channel], dtype=np.float32)
        if stride > 1:
            bands = [plane[y : y + 64] for y in range(0, height, 64 * stride)]
            detail = np.concatenate([_flat_detail(b) for b in bands if len(b) > 8])
        else:
            detail = _flat_detail(plane)
        detail = detail[np.isfinite(detail)]
        estimates.append(float(np.median(np.abs(detail))) * _MAD_TO_SIGMA if detail.size else 0.0)
    return float(np.median(estimates))
