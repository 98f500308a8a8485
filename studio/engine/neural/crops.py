"""Inpainting a large photo in crops around each hole, as IOPaint's crop strategy does.

An inpainting model needs the context around a hole, not the whole photo: each hole is cut
out with `MARGIN` pixels of context on every side (holes whose crops would overlap share
one crop), a crop longer than `WORKING_SIZE` is shrunk to it for the model and its result
enlarged back, and the results are pasted into a copy of the photo. Only the holes change
once the caller composites the result with the mask.
"""

from __future__ import annotations

from collections.abc import Generator

import cv2
import numpy as np

from studio.core.image import FloatArray
from studio.core.protocol import Progress, RunContext
from studio.core.tiling import Tile
from studio.engine.neural.executor import run_model
from studio.engine.neural.inference import Extras
from studio.engine.neural.model import LoadedModel

TRIGGER = 800  # photos whose longer side exceeds this are inpainted in crops (IOPaint: 800)
MARGIN = 128  # context around each hole (IOPaint: 128)
WORKING_SIZE = 1280  # longest crop side the model sees (IOPaint's resize limit: 1280)


def wants_crops(model: LoadedModel, pixels: FloatArray) -> bool:
    """Models that must not be tiled (LaMa, MAT) run on crops of large photos."""
    large = max(pixels.shape[:2]) > TRIGGER
    return large and "mask" in model.extras and model.tiling != "supported"


def hole_crops(mask: FloatArray, margin: int = MARGIN) -> list[Tile]:
    """Windows around the holes (mask > 0.5) with `margin` of context, overlapping ones merged."""
    height, width = mask.shape
    holes = (mask > 0.5).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=8)
    boxes = [
        Tile(
            max(0, int(y) - margin),
            min(height, int(y + h) + margin),
            max(0, int(x) - margin),
            min(width, int(x + w) + margin),
        )
        for x, y, w, h, _ in stats[1:count]
    ]
    return _merged(boxes)


def _merged(boxes: list[Tile]) -> list[Tile]:
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(boxes):
            for j in range(i + 1, len(boxes)):
                b = boxes[j]
                if a.y0 < b.y1 and b.y0 < a.y1 and a.x0 < b.x1 and b.x0 < a.x1:
                    union = Tile(min(a.y0, b.y0), max(a.y1, b.y1), min(a.x0, b.x0), max(a.x1, b.x1))
                    boxes = [box for k, box in enumerate(boxes) if k not in (i, j)] + [union]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes, key=lambda box: (box.y0, box.x0))


def inpaint_in_crops(
    model: LoadedModel,
    pixels: FloatArray,
    extras: Extras,
    ctx: RunContext,
    output_bits: int,
) -> Generator[Progress, None, FloatArray]:
    """`pixels` with each hole of `extras.mask` filled by `model` run on a crop around it."""
    assert extras.mask is not None
    crops = hole_crops(extras.mask)
    out = np.array(pixels, dtype=np.float32, copy=True)
    for index, crop in enumerate(crops):
        message = f"{model.architecture}: hole {index + 1}/{len(crops)}"
        window = pixels[crop.y0 : crop.y1, crop.x0 : crop.x1]
        mask = extras.mask[crop.y0 : crop.y1, crop.x0 : crop.x1]
        window, mask = shrunk(window, WORKING_SIZE), shrunk(mask, WORKING_SIZE)
        filled = yield from run_model(
            model, window, ctx, Extras(mask=mask), message, output_bits=output_bits
        )
        out[crop.y0 : crop.y1, crop.x0 : crop.x1] = _sized(filled, crop)
    return out


def shrunk(array: FloatArray, longest: int) -> FloatArray:
    """`array` (H, W) or (H, W, C) area-reduced to at most `longest` pixels on its longer side."""
    height, width = array.shape[:2]
    factor = longest / max(height, width)
    if factor >= 1:
        return array
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    return np.asarray(small if small.ndim == array.ndim else small[..., None], dtype=np.float32)


def _sized(result: FloatArray, crop: Tile) -> FloatArray:
    height, width = crop.y1 - crop.y0, crop.x1 - crop.x0
    if result.shape[:2] == (height, width):
        return result
    big = cv2.resize(result, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.asarray(big if big.ndim == 3 else big[..., None], dtype=np.float32)
