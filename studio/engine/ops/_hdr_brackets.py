"""Exposure brackets: their exposure times, their consistency with the pixels, and alignment.

Exposure times come from EXIF (`ImageMeta.exposure_time`) or from the user; times that
contradict the images (a longer exposure that is darker) are an error, never a guess.
Alignment uses median threshold bitmaps (Ward 2003, `cv2.AlignMTB`), chained from the
reference bracket outwards so that each pair compared is one step apart in exposure.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from studio.core.errors import BadInputError
from studio.core.image import Image, luminance
from studio.core.imageio.colour import srgb_encode

U8Array = npt.NDArray[np.uint8]
Shift = tuple[int, int]  # (dy, dx): bracket pixel (y, x) lands at (y + dy, x + dx)

_WELL_EXPOSED = (0.1, 0.9)
_SAME_TIME = 1.05  # times closer than 5 % count as equal
_MTB_EXCLUDE = 4


def bracket_name(image: Image, index: int) -> str:
    path = image.meta.source_path
    return path.name if path is not None else f"bracket {index + 1}"


def describe_time(seconds: float) -> str:
    if seconds < 1.0:
        return f"1/{1.0 / seconds:.4g} s"
    return f"{seconds:.4g} s"


def check_same_size(images: Sequence[Image]) -> None:
    first = images[0]
    for index, image in enumerate(images[1:], start=1):
        if (image.height, image.width) != (first.height, first.width):
            raise BadInputError(
                f"All brackets must have the same size: {bracket_name(first, 0)} is "
                f"{first.width}x{first.height} but {bracket_name(image, index)} is "
                f"{image.width}x{image.height}"
            )


def exposure_times(
    images: Sequence[Image], given: Sequence[float] | None
) -> npt.NDArray[np.float64]:
    """Exposure time of each bracket in seconds: `given` if set, else from EXIF."""
    if given is not None:
        if len(given) != len(images):
            raise BadInputError(
                f"{len(given)} exposure times were given for {len(images)} brackets: "
                "give one time per image, in input order"
            )
        times = np.asarray(given, dtype=np.float64)
    else:
        missing = [bracket_name(im, i) for i, im in enumerate(images) if not im.meta.exposure_time]
        if missing:
            raise BadInputError(
                f"No exposure time in the EXIF of {', '.join(missing)}: give them all with "
                "--param times=1/250,1/60,1/15 (in input order)"
            )
        times = np.asarray([im.meta.exposure_time for im in images], dtype=np.float64)
    if not np.all(np.isfinite(times)) or np.any(times <= 0):
        raise BadInputError("Exposure times must be positive numbers of seconds")
    if times.max() / times.min() < _SAME_TIME:
        raise BadInputError("The brackets all have the same exposure time: nothing to merge")
    return times


def grey_preview(image: Image, max_side: int | None = None) -> U8Array:
    """Luminance as 8-bit (as a photo shows it: linear light sRGB-encoded), optionally shrunk
    so its long side is at most `max_side`."""
    grey: npt.NDArray[np.floating[Any]] = np.clip(luminance(image.pixels), 0.0, 1.0)
    if max_side is not None and max(grey.shape) > max_side:
        scale = max_side / max(grey.shape)
        size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        grey = np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA))
    if image.meta.is_linear_photo:
        grey = srgb_encode(grey)
    return np.asarray(np.rint(grey * 255.0), dtype=np.uint8)


def _brighter_score(dark: U8Array, bright: U8Array) -> float:
    """Mean sign of (bright - dark) over pixels well exposed in at least one of the two."""
    low, high = _WELL_EXPOSED[0] * 255, _WELL_EXPOSED[1] * 255
    informative = ((dark > low) & (dark < high)) | ((bright > low) & (bright < high))
    diff = np.sign(bright[informative].astype(np.int16) - dark[informative].astype(np.int16))
    return float(diff.mean()) if diff.size else 0.0


def check_times_match_images(
    images: Sequence[Image], times: npt.NDArray[np.float64], previews: Sequence[U8Array]
) -> None:
    """Raise if a longer exposure is darker than a shorter one, or equal times look different."""
    order = np.argsort(times, kind="stable")
    for a, b in itertools.pairwise(order):
        score = _brighter_score(previews[a], previews[b])
        ratio = times[b] / times[a]
        contradicts = score < 0.0 if ratio >= _SAME_TIME else abs(score) > 0.9
        if contradicts:
            raise BadInputError(
                f"Exposure times contradict the images: {bracket_name(images[b], int(b))} "
                f"({describe_time(times[b])}) is not brighter than "
                f"{bracket_name(images[a], int(a))} ({describe_time(times[a])}). "
                "Check the order of the exposure times"
            )


def reference_index(previews: Sequence[U8Array], times: npt.NDArray[np.float64]) -> int:
    """The bracket with the most well-exposed pixels (ties: the one nearest the middle)."""
    order = [int(i) for i in np.argsort(times, kind="stable")]
    low, high = _WELL_EXPOSED[0] * 255, _WELL_EXPOSED[1] * 255
    good = [round(float(np.mean((p > low) & (p < high))), 3) for p in previews]
    middle = len(order) // 2
    return max(order, key=lambda i: (good[i], -abs(order.index(i) - middle)))


def _mtb_usable(grey: U8Array) -> bool:
    """A median threshold bitmap says something only with enough pixels on both sides."""
    median = float(np.median(grey))
    above = float(np.mean(grey > median + _MTB_EXCLUDE))
    below = float(np.mean(grey < median - _MTB_EXCLUDE))
    return min(above, below) > 0.1


def _bitmaps(grey: U8Array) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    median = np.median(grey)
    threshold = grey > median
    keep = np.abs(grey.astype(np.int16) - int(median)) > _MTB_EXCLUDE
    return threshold, keep


def _shift_mask(mask: npt.NDArray[np.bool_], shift: Shift) -> npt.NDArray[np.bool_]:
    dy, dx = shift
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def _mtb_error(fixed: U8Array, moving: U8Array, shift: Shift) -> float:
    t0, k0 = _bitmaps(fixed)
    t1, k1 = _bitmaps(moving)
    keep = k0 & _shift_mask(k1, shift)
    count = int(keep.sum())
    if count == 0:
        return 1.0
    return float(((t0 ^ _shift_mask(t1, shift)) & keep).sum()) / count


def pair_shift(fixed: U8Array, moving: U8Array, max_shift: int) -> Shift:
    """The (dy, dx) moving `moving` onto `fixed`, or (0, 0) when MTB cannot tell."""
    if max_shift < 1 or not (_mtb_usable(fixed) and _mtb_usable(moving)):
        return (0, 0)
    levels_fitting = int(np.log2(min(fixed.shape) / 16))  # coarsest level at least 16 px
    bits = min(int(np.ceil(np.log2(max_shift + 1))), levels_fitting)
    if bits < 1:
        return (0, 0)
    dx, dy = cv2.createAlignMTB(bits, _MTB_EXCLUDE, True).calculateShift(fixed, moving)
    shift = (int(dy), int(dx))
    if shift == (0, 0) or _mtb_error(fixed, moving, shift) >= _mtb_error(fixed, moving, (0, 0)):
        return (0, 0)
    return shift


def align_shifts(
    greys: Sequence[U8Array], times: npt.NDArray[np.float64], reference: int, max_shift: int
) -> list[Shift]:
    """Shift of every bracket onto the reference, chained through neighbouring exposures."""
    order = [int(i) for i in np.argsort(times, kind="stable")]
    pos = order.index(reference)
    shifts: list[Shift] = [(0, 0)] * len(greys)
    for step in (1, -1):
        previous = reference
        k = pos + step
        while 0 <= k < len(order):
            current = order[k]
            dy, dx = pair_shift(greys[previous], greys[current], max_shift)
            py, px = shifts[previous]
            shifts[current] = (py + dy, px + dx)
            previous, k = current, k + step
    return shifts


def shifted_rows(
    pixels: npt.NDArray[np.float32], shift: Shift, y0: int, y1: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Rows [y0, y1) of `pixels` moved by `shift`, and where they hold real (not border) data."""
    dy, dx = shift
    height, width = pixels.shape[:2]
    rows = np.arange(y0, y1) - dy
    cols = np.arange(width) - dx
    row_ok = (rows >= 0) & (rows < height)
    col_ok = (cols >= 0) & (cols < width)
    block = pixels[np.clip(rows, 0, height - 1)][:, np.clip(cols, 0, width - 1)]
    return block, row_ok[:, None] & col_ok[None, :]
