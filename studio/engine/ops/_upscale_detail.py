"""Built-in super-resolution: back-projection with a non-local-means prior.

The photo is modelled as the area average of the sharper picture we look for (what a sensor
with bigger pixels, or a downscale in any editor, does). Starting from bicubic, the estimate is
back-projected until its area average gives the photo again, then alternately smoothed with
non-local means on luminance (at a falling strength) and back-projected: the prior keeps
edges clean and flat areas quiet, the projection keeps every pixel faithful to the photo.
Measured on CBSD68 (2x, area-downscaled): about +0.7 dB over bicubic, back-projection alone
+0.35 dB (see benchmarks/quality/upscale.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from studio.core.image import FloatArray

INITIAL_PROJECTIONS = 20
PRIOR_STRENGTHS = (10.0, 5.85, 3.42, 2.0)  # non-local means h per round, 8-bit units
PROJECTIONS_PER_ROUND = 5
NLM_TEMPLATE = 5
NLM_SEARCH = 11
_TO_YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    dtype=np.float32,
)
_FROM_YCC = np.linalg.inv(_TO_YCC).astype(np.float32)


def integer_steps(scale: float) -> list[int]:
    """Factors of 2 and 3 whose product is the smallest such number >= `scale`."""
    target = int(np.ceil(scale - 1e-9))
    best: list[int] | None = None
    for threes in range(4):
        for twos in range(5):
            product = 3**threes * 2**twos
            if product >= target and (best is None or product < np.prod(best)):
                best = [3] * threes + [2] * twos
    assert best is not None
    return best


def _area_down(x: FloatArray, size: tuple[int, int]) -> FloatArray:
    out = cv2.resize(x, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.asarray(out, dtype=np.float32).reshape(size[0], size[1], -1)


def _cubic_up(x: FloatArray, size: tuple[int, int]) -> FloatArray:
    out = cv2.resize(x, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    return np.asarray(out, dtype=np.float32).reshape(size[0], size[1], -1)


def back_project(estimate: FloatArray, photo: FloatArray, rounds: int) -> FloatArray:
    """Correct `estimate` until its area average reproduces `photo` (iterative back-projection)."""
    small, big = photo.shape[:2], estimate.shape[:2]
    for _ in range(rounds):
        estimate = estimate + _cubic_up(photo - _area_down(estimate, small), big)
    return estimate


def _nlm_luminance(x: FloatArray, strength: float) -> FloatArray:
    """Non-local means on the luminance of [0, 1] pixels (16-bit precision), colour kept."""
    colour = x.shape[2] == 3
    ycc = x @ _TO_YCC.T if colour else x.copy()
    luma = np.clip(ycc[..., 0], 0.0, 1.0)
    quantised = np.rint(luma * 65535.0).astype(np.uint16)
    filtered = cv2.fastNlMeansDenoising(
        quantised, [strength * 257.0 * 3.0], None, NLM_TEMPLATE, NLM_SEARCH, cv2.NORM_L1
    )
    ycc[..., 0] += (filtered.astype(np.float32) - quantised.astype(np.float32)) / 65535.0
    out = ycc @ _FROM_YCC.T if colour else ycc
    return np.asarray(out, dtype=np.float32)


def upscale_step(photo: FloatArray, factor: int) -> FloatArray:
    """(h, w, C) pixels in about [0, 1] enlarged `factor` times (an integer)."""
    height, width = photo.shape[0] * factor, photo.shape[1] * factor
    estimate = back_project(_cubic_up(photo, (height, width)), photo, INITIAL_PROJECTIONS)
    for strength in PRIOR_STRENGTHS:
        estimate = back_project(_nlm_luminance(estimate, strength), photo, PROJECTIONS_PER_ROUND)
    return estimate
