"""Built-in inpaint engines: OpenCV Telea and Navier-Stokes for scratches and dust, and
exemplar-based PatchMatch completion (the default) for larger holes.

Every engine works on a crop around the hole with a margin of context, so a small hole in a
24-megapixel photo costs little. The mask is 1 where pixels are to be filled.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import cv2
import numpy as np
from pydantic import Field

from studio.core.errors import BadInputError
from studio.core.image import FloatArray, Image
from studio.core.protocol import (
    MASK,
    EngineInput,
    EngineSpec,
    JobInputs,
    OpRun,
    Params,
    Progress,
    RunContext,
)
from studio.engine.ops._inpaint_patchmatch import fill_hole, source_mask

CONTEXT_FACTOR = 1.0
"""The crop extends beyond the hole's bounding box by this fraction of its size (each side)."""
MIN_CONTEXT = 32
"""The least context on each side (px); a diffusion fill gets all it reads where that is more."""
MIN_EXEMPLARS = 64
"""Fewer whole patches than this outside the hole: PatchMatch has nothing to copy from."""


class DiffusionParams(Params):
    radius: int = Field(5, ge=1, le=50, description="Neighbourhood radius (px) considered")


class PatchMatchParams(Params):
    patch: int = Field(13, ge=5, le=15, description="Patch size (px, odd): larger keeps structure")
    seed: int = Field(0, ge=0, description="Random seed of the patch search (same seed, same fill)")


def hole_of(inputs: JobInputs) -> np.ndarray:
    """The fill mask as booleans, checked against the image."""
    image = inputs.image
    assert inputs.mask is not None, "check_inputs ensures the mask"
    if inputs.mask.shape != (image.height, image.width):
        size = "x".join(str(n) for n in (*inputs.mask.shape[1::-1], *inputs.mask.shape[2:]))
        raise BadInputError(f"Mask is {size} but the image is {image.width}x{image.height}")
    return np.asarray(inputs.mask > 0.5)


def context_box(hole: np.ndarray, reach: int) -> tuple[slice, slice]:
    """The hole's bounding box grown on every side by its size, or by `reach` pixels where
    that is more, clipped to the image."""
    rows, cols = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
    boxes = []
    for found, length in ((rows, hole.shape[0]), (cols, hole.shape[1])):
        low, high = int(found[0]), int(found[-1]) + 1
        margin = max(reach, int((high - low) * CONTEXT_FACTOR))
        boxes.append(slice(max(0, low - margin), min(length, high + margin)))
    return boxes[0], boxes[1]


FillFn = Callable[[FloatArray, np.ndarray], Generator[Progress, None, FloatArray]]


def _inpaint(inputs: JobInputs, fill: FillFn, reach: int) -> OpRun:
    image: Image = inputs.image
    hole = hole_of(inputs)
    if not hole.any():
        yield Progress(1, 1, "Nothing to fill")
        return image
    rows, cols = context_box(hole, reach)
    crop = image.pixels[rows, cols]
    filled = yield from fill(crop, hole[rows, cols])
    pixels = image.pixels.copy()
    pixels[rows, cols] = np.where(hole[rows, cols, None], filled, crop)
    return image.with_pixels(pixels)


def _opencv(method: int, radius: int) -> FillFn:
    def fill(crop: FloatArray, hole: np.ndarray) -> Generator[Progress, None, FloatArray]:
        yield Progress(0, 1, "Filling")
        low, high = float(crop.min()), float(crop.max())
        scale = (high - low) or 1.0  # a flat crop: every level is 0, the fill is `low`
        eight_bit = np.rint((crop - low) / scale * 255).astype(np.uint8)
        out = cv2.inpaint(eight_bit, hole.astype(np.uint8), radius, method)
        yield Progress(1, 1, "Filled")
        return np.asarray(out.reshape(crop.shape) / 255 * scale + low, dtype=np.float32)

    return fill


def _diffusion(inputs: JobInputs, method: int, radius: int) -> OpRun:
    """OpenCV reads up to `radius` pixels from the hole, and one more for its gradients."""
    reach = max(MIN_CONTEXT, radius + 1)
    return (yield from _inpaint(inputs, _opencv(method, radius), reach))


def run_telea(inputs: JobInputs, params: DiffusionParams, ctx: RunContext) -> OpRun:
    return (yield from _diffusion(inputs, cv2.INPAINT_TELEA, params.radius))


def run_navier_stokes(inputs: JobInputs, params: DiffusionParams, ctx: RunContext) -> OpRun:
    return (yield from _diffusion(inputs, cv2.INPAINT_NS, params.radius))


def has_exemplars(hole: np.ndarray, patch: int) -> bool:
    """Whether enough whole patches, inside the crop and outside the hole, are left to copy
    texture from."""
    return int(np.count_nonzero(source_mask(hole, patch))) >= MIN_EXEMPLARS


def run_patchmatch(inputs: JobInputs, params: PatchMatchParams, ctx: RunContext) -> OpRun:
    patch = params.patch | 1

    def fill(crop: FloatArray, hole: np.ndarray) -> Generator[Progress, None, FloatArray]:
        if not has_exemplars(hole, patch):
            ctx.log("Too little picture around the hole for patches: filling by diffusion")
            return _opencv(cv2.INPAINT_TELEA, 5)(crop, hole)
        return fill_hole(crop, hole, patch=patch, seed=params.seed)

    return (yield from _inpaint(inputs, fill, MIN_CONTEXT))


ENGINES: list[EngineSpec] = [
    EngineSpec(
        task="inpaint",
        id="patchmatch",
        name="Exemplar fill (PatchMatch)",
        params=PatchMatchParams,
        run=run_patchmatch,
        description="Rebuilds larger holes, such as a removed object, from patches of the "
        "surrounding photo: keeps texture instead of smearing.",
        default=True,
        inputs=(EngineInput(MASK, required=True),),
    ),
    EngineSpec(
        task="inpaint",
        id="telea",
        name="Telea (OpenCV)",
        params=DiffusionParams,
        run=run_telea,
        description="Fast marching fill for thin scratches, dust and small spots.",
        inputs=(EngineInput(MASK, required=True),),
    ),
    EngineSpec(
        task="inpaint",
        id="navier_stokes",
        name="Navier-Stokes (OpenCV)",
        params=DiffusionParams,
        run=run_navier_stokes,
        description="Fluid-dynamics fill for thin scratches; continues edges into the gap.",
        inputs=(EngineInput(MASK, required=True),),
    ),
]
