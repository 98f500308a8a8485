"""Run one job: resolve the engine, validate parameters, run it, apply opacity and region.

This is the single code path behind the CLI, the batch runner, the UI worker and the live
preview, so what a photographer previews is what they export.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from studio.core.errors import (
    BadInputError,
    EngineUnavailableError,
    MissingInputError,
    StudioError,
    UsageError,
)
from studio.core.image import Image
from studio.core.imageio import srgb_encoded
from studio.core.protocol import (
    BRACKETS,
    EngineSpec,
    JobInputs,
    Missing,
    Params,
    ResultRun,
    RunContext,
)
from studio.core.registry import Registry
from studio.core.stored import StoredImage


@dataclass(frozen=True)
class JobRequest:
    """A task to run on inputs, with the engine's parameters as plain values.

    `opacity` blends the result over the original (1 = full effect); `region` (H, W) in
    [0, 1] limits where the result applies. Both are handled here, once, for every engine.
    """

    task: str
    inputs: JobInputs
    engine: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    opacity: float = 1.0
    region: np.ndarray | None = None


def validate_params(spec: EngineSpec, values: Mapping[str, Any]) -> Params:
    """Build the engine's parameter model, turning validation failures into one clear line."""
    try:
        return spec.params.model_validate(dict(values))
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in err.errors()
        )
        raise BadInputError(f"Invalid parameters for {spec.task}/{spec.id}: {problems}") from None


def check_inputs(spec: EngineSpec, given: Collection[str]) -> None:
    """Check that the inputs present (`given`: their kinds' names) are what `spec` declares.

    Raises `MissingInputError` for a missing required input, or for none of its inputs when
    it needs one of them, and `UsageError` for several photos to an engine that takes one.
    """
    if BRACKETS.name in given and not spec.merges_images:
        raise UsageError(f"{spec.name} takes one photo, not several")
    for use in spec.inputs:
        if use.required and use.kind.name not in given:
            raise _missing(spec, use.kind.missing)
    if spec.needs_any_input and not any(use.kind.name in given for use in spec.inputs):
        raise _missing(spec, spec.needs_any_input)


def _missing(spec: EngineSpec, texts: Missing) -> MissingInputError:
    return MissingInputError(texts.window, f"{spec.name}: {texts.cli}")


def run_job(registry: Registry, request: JobRequest, ctx: RunContext) -> ResultRun:
    """Run `request` as a generator of Progress, returning the final image (a `StoredImage`
    for engines that enlarge)."""
    spec = registry.get(request.task, request.engine)
    availability = spec.available(ctx)
    if not availability.ok:
        raise EngineUnavailableError(f"{spec.name} is unavailable: {availability.reason}")
    params = validate_params(spec, request.params)
    check_inputs(spec, request.inputs.given())
    inputs = request.inputs if spec.linear_light else _srgb_encoded(request.inputs)
    if request.region is not None:
        inputs = dataclasses.replace(inputs, region=_region_weight(request.region, inputs.image))
    original = inputs.image
    result = yield from spec.run(inputs, params, ctx)
    step = f"{spec.task}/{spec.id} {json.dumps(params.model_dump(mode='json'), sort_keys=True)}"
    if isinstance(result, StoredImage):  # an enlargement
        if request.opacity != 1.0 or request.region is not None:
            raise BadInputError(_SAME_SIZE)
        if not _all_finite(result.samples):
            raise StudioError(f"{spec.name} produced invalid pixels (NaN or infinity)")
        return result.with_step(step)
    if not _all_finite(result.pixels):
        raise StudioError(f"{spec.name} produced invalid pixels (NaN or infinity)")
    region = inputs.region if request.region is not None else None
    blended = _blend(original, result, request.opacity, region)
    return blended.with_pixels(blended.pixels, step=step)


def _srgb_encoded(inputs: JobInputs) -> JobInputs:
    """The inputs with every linear-light photo (a camera RAW) sRGB-encoded."""
    extras = {
        name: srgb_encoded(value) if isinstance(value, Image) else value
        for name, value in inputs.extras.items()
    }
    images = tuple(srgb_encoded(image) for image in inputs.images)
    return dataclasses.replace(inputs, images=images, extras=extras)


_SAME_SIZE = "Opacity and region need a result of the same size as the original"


def _all_finite(pixels: np.ndarray, rows: int = 256) -> bool:
    """Whether every pixel is a number, checked a band of rows at a time (no full-size mask)."""
    return all(np.isfinite(pixels[y : y + rows]).all() for y in range(0, len(pixels), rows))


def _blend(original: Image, result: Image, opacity: float, region: np.ndarray | None) -> Image:
    """`result` over `original` with weight `opacity` times `region` ((H, W) weights), a band of
    rows at a time and into the result's own pixels when the engine made them, so the blend
    costs no full-size temporary."""
    if not 0.0 <= opacity <= 1.0:
        raise BadInputError(f"Opacity must be between 0 and 1, got {opacity}")
    if opacity == 1.0 and region is None:
        return result
    if result.pixels.shape != original.pixels.shape:
        raise BadInputError(_SAME_SIZE)
    pixels = result.pixels
    if not pixels.flags.writeable or np.may_share_memory(pixels, original.pixels):
        pixels = np.empty_like(original.pixels)
    rows = max(1, 2**18 // original.width)
    for top in range(0, len(pixels), rows):
        band = slice(top, top + rows)
        weight = np.full(pixels[band].shape[:2], opacity, dtype=np.float32)
        if region is not None:
            weight *= region[band]
        w = weight[..., None]
        pixels[band] = result.pixels[band] * w + original.pixels[band] * (1.0 - w)
    return result.with_pixels(pixels)


def _region_weight(region: np.ndarray, image: Image) -> np.ndarray:
    """The region as (H, W) weights in [0, 1]; a single trailing channel is accepted."""
    if region.ndim == 3 and region.shape[2] == 1:
        region = region[..., 0]
    if region.shape != (image.height, image.width):
        size = "x".join(str(n) for n in region.shape[::-1])
        raise BadInputError(f"Region mask is {size} but the image is {image.width}x{image.height}")
    if not np.issubdtype(region.dtype, np.number) and region.dtype != np.bool_:
        raise BadInputError(f"Region mask must hold numbers, not {region.dtype}")
    weight = region.astype(np.float32)
    if not np.isfinite(weight).all():
        raise BadInputError("Region mask holds invalid values (NaN or infinity)")
    return np.clip(weight, 0.0, 1.0, out=weight)
