"""The radiance merge with ghost suppression.

The merge averages each bracket's radiance estimate ln f^-1(z) - ln t (ln z - ln t for linear
light) with a hat weight, on the value as a photo shows it, that ignores clipped pixels, strip
by strip so memory stays bounded. Ghost suppression picks a reference bracket and walks
outwards through neighbouring exposures, down-weighting pixels whose radiance disagrees with
what the reference (or the nearest bracket already trusted there) says, so a moving object
appears once, as in the reference.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from studio.core.image import FloatArray, Image, as_rgb
from studio.core.protocol import Progress
from studio.engine.ops._hdr_brackets import Shift, shifted_rows
from studio.engine.ops._hdr_response import (
    MID_GREY,
    Response,
    apply_log_response,
    exposure_level,
)

_TRUSTED = 0.1  # hat weight above which a pixel is well exposed (0.05 < z < 0.95)
_GHOST_BLUR = 2.0  # pixels: disagreement is judged on a lightly smoothed map
_BLOCK_ELEMENTS = 8_000_000  # floats per bracket stack in one strip (bounds memory)


def hat_weight(z: FloatArray) -> FloatArray:
    """Debevec's triangle: 1 at mid-grey, 0 at the clipped ends."""
    return np.asarray(1.0 - np.abs(2.0 * z - 1.0), dtype=np.float32)


def merge_radiance(
    images: Sequence[Image],
    times: npt.NDArray[np.float64],
    log_response: Response,
    shifts: Sequence[Shift],
    reference: int,
    ghost_tolerance: float | None,
) -> Generator[Progress, None, FloatArray]:
    """Linear radiance (H, W, 3); `ghost_tolerance` in stops, None to keep every pixel.

    Scaled so that a mid-grey pixel of the reference bracket has the value `MID_GREY`.
    """
    height, width = images[0].height, images[0].width
    pad = int(np.ceil(3 * _GHOST_BLUR)) if ghost_tolerance is not None else 0
    rows = max(8, _BLOCK_ELEMENTS // (len(images) * width * 3))
    starts = list(range(0, height, rows))
    out = np.empty((height, width, 3), dtype=np.float32)
    for index, y0 in enumerate(starts):
        yield Progress(index, len(starts), f"Merging radiance: strip {index + 1}/{len(starts)}")
        y1 = min(height, y0 + rows)
        a, b = max(0, y0 - pad), min(height, y1 + pad)
        block = _merge_rows(images, times, log_response, shifts, reference, ghost_tolerance, a, b)
        out[y0:y1] = block[y0 - a : y1 - a]
    yield Progress(len(starts), len(starts), "Merged radiance")
    scale = np.float32(times[reference] * MID_GREY)
    np.exp(out, out=out)
    out *= scale
    return out


def _merge_rows(
    images: Sequence[Image],
    times: npt.NDArray[np.float64],
    log_response: Response,
    shifts: Sequence[Shift],
    reference: int,
    ghost_tolerance: float | None,
    y0: int,
    y1: int,
) -> FloatArray:
    """Log radiance of rows [y0, y1)."""
    logs, weights, values = [], [], []
    for image, t, shift in zip(images, times, shifts, strict=True):
        pixels, valid = shifted_rows(image.pixels, shift, y0, y1)
        z = np.clip(as_rgb(pixels), 0.0, 1.0)
        logs.append(apply_log_response(log_response, z) - np.float32(np.log(t)))
        level = exposure_level(log_response, z)
        weights.append(hat_weight(level) * valid[..., None])
        values.append(level)
    if ghost_tolerance is not None:
        ghosts = ghost_weights(logs, weights, times, reference, ghost_tolerance)
        weights = [w * g[..., None] for w, g in zip(weights, ghosts, strict=True)]
    num = np.zeros_like(logs[0])
    den = np.zeros_like(logs[0])
    for log, weight in zip(logs, weights, strict=True):
        num += weight * log
        den += weight
    shortest, longest = int(np.argmin(times)), int(np.argmax(times))
    clipped = np.where(values[shortest] >= 0.5, logs[shortest], logs[longest])
    return np.where(den > 1e-4, num / np.maximum(den, 1e-4), clipped)


def ghost_weights(
    logs: Sequence[FloatArray],
    weights: Sequence[FloatArray],
    times: npt.NDArray[np.float64],
    reference: int,
    tolerance: float,
) -> list[FloatArray]:
    """Per-pixel weights in [0, 1] that drop brackets disagreeing with the reference."""
    level = [log.mean(axis=2) for log in logs]
    trusted = [w.min(axis=2) > _TRUSTED for w in weights]
    target = np.where(trusted[reference], level[reference], 0.0).astype(np.float32)
    known = trusted[reference].copy()
    ghosts = [np.ones_like(level[0]) for _ in logs]
    order = [int(i) for i in np.argsort(times, kind="stable")]
    pos = order.index(reference)
    for side in (order[pos + 1 :], order[:pos][::-1]):
        for j in side:
            both = trusted[j] & known
            stops = np.abs(level[j] - target) / np.float32(np.log(2.0))
            stops = _masked_blur(stops, both)
            ghosts[j] = np.where(both, 1.0 / (1.0 + (stops / tolerance) ** 4), 1.0).astype(
                np.float32
            )
            new = trusted[j] & ~known
            target[new] = level[j][new]
            known |= new
    return ghosts


def _masked_blur(values: FloatArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
    m = mask.astype(np.float32)
    num = cv2.GaussianBlur(values * m, (0, 0), _GHOST_BLUR)
    den = cv2.GaussianBlur(m, (0, 0), _GHOST_BLUR)
    return np.asarray(num / np.maximum(den, 1e-6), dtype=np.float32)


def bracket_agreement(
    images: Sequence[Image],
    times: npt.NDArray[np.float64],
    log_response: Response,
    shifts: Sequence[Shift],
    radiance: FloatArray,
) -> list[float]:
    """Per bracket, the median |stops| between its pixels mapped through the response and
    `radiance`, over its well-exposed pixels (0.1 < z < 0.9 as shown), after one global scale."""
    log_radiance = np.log(np.maximum(as_rgb(radiance), 1e-12))
    diffs = []
    for image, t, shift in zip(images, times, shifts, strict=True):
        pixels, valid = shifted_rows(image.pixels, shift, 0, image.height)
        z = np.clip(as_rgb(pixels), 0.0, 1.0)
        level = exposure_level(log_response, z)
        ok = (level > 0.1) & (level < 0.9) & valid[..., None]
        log_bracket = apply_log_response(log_response, z) - np.log(t)
        diffs.append((log_bracket - log_radiance)[ok] / np.log(2.0))
    offset = np.median(np.concatenate(diffs))
    return [float(np.median(np.abs(d - offset))) if d.size else 0.0 for d in diffs]
