"""Built-in upscale engines: detail-preserving back-projection (the default) and Lanczos.

Both enlarge by `scale` (1.1 to 8) into a `StoredImage`: 16-bit samples (float32 for float
photos) filled a band of rows at a time, never a full-size float32 result (a 384-MP result
is 2.3 GB instead of 4.6). Alpha is enlarged with the picture; metadata is kept and the
writers record the new pixel dimensions.
"""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np
from pydantic import Field

from studio.core.image import FloatArray, Image
from studio.core.protocol import (
    EngineSpec,
    JobInputs,
    Params,
    Progress,
    ResultRun,
    RunContext,
    Size,
)
from studio.core.stored import Samples, SampleStore, StoredImage, converted, store_depth
from studio.core.tiling import Tile
from studio.engine.ops._upscale_detail import integer_steps, upscale_step
from studio.engine.tiling import run_tiled, run_tiled_into

DETAIL_TILE = 256  # input pixels a side: cache-sized, and memory stays bounded on big photos
DETAIL_OVERLAP = 32  # the prior and the projections reach about 30 output pixels


class ScaleParams(Params):
    scale: float = Field(
        2.0, ge=1.1, le=8.0, description="How many times wider and taller the result is"
    )


def enlarged_size(size: Size, scale: float) -> Size:
    """(height, width) `size` enlarged `scale` times, at least one pixel more a side."""
    return max(round(size[0] * scale), size[0] + 1), max(round(size[1] * scale), size[1] + 1)


def result_size(size: Size, params: ScaleParams) -> Size:
    return enlarged_size(size, params.scale)


def _resize(samples: Samples, size: Size, interpolation: int) -> Samples:
    """(h, w, C) or (h, w) samples of any type resized to `size`, the same type and layout."""
    out = cv2.resize(samples, (size[1], size[0]), interpolation=interpolation)
    return np.asarray(out).reshape(size + samples.shape[2:])


def stored_result(image: Image, samples: Samples, scale: float) -> StoredImage:
    """`image` as a stored result of `samples` (already enlarged by some factor, at the depth
    `store_depth` gives) brought to `scale` times its size: area averaging to reduce, Lanczos
    to enlarge further; alpha follows."""
    size = enlarged_size((image.height, image.width), scale)
    if samples.shape[:2] != size:
        shrink = size[0] < samples.shape[0] or size[1] < samples.shape[1]
        samples = _resize(samples, size, cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    alpha = None
    if image.alpha is not None:
        alpha = _resize(converted(image.alpha, store_depth(image.meta)), size, cv2.INTER_LINEAR)
        if image.meta.is_float:
            np.clip(alpha, 0.0, 1.0, out=alpha)
    return StoredImage(samples, image.meta, alpha)


def run_lanczos(inputs: JobInputs, params: ScaleParams, ctx: RunContext) -> ResultRun:
    image = inputs.image
    yield Progress(0, 1, f"Lanczos {params.scale:g}x")
    size = enlarged_size((image.height, image.width), params.scale)
    # An integer photo is resized in 16 bits, straight into its stored result (exact for 8- and
    # 16-bit photos; OpenCV clips and rounds as writing would): no float32 result.
    samples = _resize(converted(image.pixels, store_depth(image.meta)), size, cv2.INTER_LANCZOS4)
    yield Progress(1, 1, f"Lanczos {params.scale:g}x")
    return stored_result(image, samples, params.scale)


def _value_range(image: Image) -> tuple[float, float]:
    """The offset and span of the range mapped to [0, 1] for the prior, none unless the photo
    is float: its own range, in any units (a flat photo maps to 0 with any span)."""
    if not image.meta.is_float:
        return 0.0, 1.0
    low, high = float(image.pixels.min()), float(image.pixels.max())
    return low, high - low if high > low else 1.0


def run_detail(inputs: JobInputs, params: ScaleParams, ctx: RunContext) -> ResultRun:
    """Each integer step tiled; the last one's rows go straight into the stored result."""
    image = inputs.image
    low, span = _value_range(image)
    pixels = (image.pixels - low) / span if image.meta.is_float else image.pixels
    steps = integer_steps(params.scale)
    tiling = {"tile": ctx.tile or DETAIL_TILE, "overlap": DETAIL_OVERLAP}
    for number, factor in enumerate(steps[:-1], start=1):
        label = f"Enlarging {factor}x (step {number}/{len(steps)})"
        step = partial(upscale_step, factor=factor)
        pixels = yield from run_tiled(pixels, step, message=label, scale=factor, **tiling)
    factor = steps[-1]
    height, width = pixels.shape[0] * factor, pixels.shape[1] * factor
    store = SampleStore(height, width, store_depth(image.meta))

    def put(top: int, rows: FloatArray) -> None:
        if image.meta.is_float:
            rows *= span
            rows += low
        store.put(top, rows)

    label = f"Enlarging {factor}x (step {len(steps)}/{len(steps)})"
    last_step = partial(_step_at, factor=factor)
    yield from run_tiled_into(pixels, last_step, put, message=label, scale=factor, **tiling)
    return stored_result(image, store.samples, params.scale)


def _step_at(window: FloatArray, at: Tile, factor: int) -> FloatArray:
    return upscale_step(window, factor)


ENGINES: list[EngineSpec] = [
    EngineSpec(
        task="upscale",
        id="detail",
        name="Detail-preserving enlargement",
        params=ScaleParams,
        run=run_detail,
        result_size=result_size,
        description="Back-projection with a non-local-means prior: sharper edges and cleaner "
        "flat areas than bicubic, faithful to every original pixel. No download needed.",
        default=True,
    ),
    EngineSpec(
        task="upscale",
        id="lanczos",
        name="Lanczos",
        params=ScaleParams,
        run=run_lanczos,
        result_size=result_size,
        description="Fast classic resampling: a quick preview of the enlargement.",
    ),
]
