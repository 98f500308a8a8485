"""Built-in style engines: a painterly texture synthesis, colour transfer, histogram matching.

`painterly` (the default) paints the photo with the style image's strokes and colours by
texture synthesis (Elad & Milanfar 2017), without pretrained weights. It works at a
working size (long side 512 px on a CPU, 1024 on a GPU) and enlarges the painting to the
photo's size, restoring some of the photo's fine detail. `color_transfer` (Reinhard et al.)
and `histogram` only move colours. How much of the result replaces the photo is the generic
opacity, not a parameter of these engines.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from studio.core.image import FloatArray, as_rgb, luminance
from studio.core.protocol import (
    STYLE,
    EngineInput,
    EngineSpec,
    JobInputs,
    OpRun,
    Params,
    Progress,
    RunContext,
)
from studio.engine.device import resolve_device
from studio.engine.ops import _style_color as colour
from studio.engine.ops import _style_synthesis as synthesis
from studio.engine.tiling import on_device_or_cpu, run_tiled

_COLOUR_TILE = 1024
_BAND_PIXELS = 2**18  # pixels a band-by-band step works on at a time
_PATCH_SIZES = (33, 21, 13)
_SCALES = 3


class ColourParams(Params):
    keep_lightness: bool = Field(
        False, description="Change colours only; keep the photo's own light and shade"
    )


class PainterlyParams(Params):
    working_size: int | None = Field(
        None,
        ge=64,
        le=2048,
        description="Long side in pixels the painting is made at (default 512 on a CPU, 1024 "
        "on a GPU); larger is slower and paints finer strokes",
    )
    content_weight: float = Field(
        3.0, ge=0.0, le=20.0, description="How strongly the photo's structure shows through"
    )
    stroke_scale: float = Field(
        1.0, ge=0.25, le=4.0, description="Size of the style's strokes (style image scale)"
    )
    iterations: int = Field(
        3, ge=1, le=10, description="Passes per stroke size: more follows the style closer"
    )
    detail: float = Field(
        0.3, ge=0.0, le=1.0, description="Photo detail restored when enlarging to full size"
    )
    seed: int = Field(0, ge=0, description="Random seed: the same seed paints the same picture")


def _style_of(inputs: JobInputs) -> FloatArray:
    assert inputs.style is not None, "check_inputs ensures the style image"
    return _clipped(as_rgb(inputs.style.pixels))


def _content_of(inputs: JobInputs) -> FloatArray:
    return _clipped(as_rgb(inputs.image.pixels))


def _clipped(pixels: FloatArray) -> FloatArray:
    """`pixels` clipped to [0, 1]: the photo itself when it already is (an 8- or 16-bit
    photo always is), so a big photo is not copied."""
    rows = max(1, _BAND_PIXELS // pixels.shape[1])
    bands = (pixels[y : y + rows] for y in range(0, len(pixels), rows))
    if all(band.min() >= 0.0 and band.max() <= 1.0 for band in bands):
        return pixels
    return np.clip(pixels, 0.0, 1.0)


def _run_colour_map(
    inputs: JobInputs, mapping: colour.StatisticsMap | colour.QuantileMap, ctx: RunContext
) -> OpRun:
    pixels = _content_of(inputs)
    mapped = yield from run_tiled(pixels, mapping, ctx.tile or _COLOUR_TILE, 0, 3, "Recolouring")
    return inputs.image.with_pixels(mapped)


def run_color_transfer(inputs: JobInputs, params: ColourParams, ctx: RunContext) -> OpRun:
    yield Progress(0, 1, "Measuring colours")
    mapping = colour.fit_statistics(_content_of(inputs), _style_of(inputs), params.keep_lightness)
    return (yield from _run_colour_map(inputs, mapping, ctx))


def run_histogram(inputs: JobInputs, params: ColourParams, ctx: RunContext) -> OpRun:
    yield Progress(0, 1, "Measuring colours")
    mapping = colour.histogram_map(_content_of(inputs), _style_of(inputs), params.keep_lightness)
    return (yield from _run_colour_map(inputs, mapping, ctx))


def run_painterly(inputs: JobInputs, params: PainterlyParams, ctx: RunContext) -> OpRun:
    style = _style_of(inputs)
    content = _content_of(inputs)
    device = resolve_device(ctx.device)
    size = params.working_size or (1024 if device.type == "cuda" else 512)
    work = colour.shrink(content, size)
    settings = synthesis.SynthesisSettings(
        size=(work.shape[0], work.shape[1]),
        scales=_SCALES,
        patch_sizes=_PATCH_SIZES,
        iterations=params.iterations,
        content_weight=params.content_weight,
        style_scale=params.stroke_scale,
        seed=params.seed,
    )
    style_work = colour.shrink(style, round(size * params.stroke_scale))
    if work.shape != content.shape:
        ctx.log(f"Painting at {work.shape[1]}x{work.shape[0]}, then enlarging to full size")
    painted = yield from on_device_or_cpu(
        lambda on: synthesis.synthesize(work, style_work, settings, on), device, ctx
    )
    if work.shape != content.shape:
        painted = enlarge(painted, content, params.detail)
    return inputs.image.with_pixels(painted)


def enlarge(painted: FloatArray, content: FloatArray, detail: float) -> FloatArray:
    """The painting at the content's size, plus `detail` times the content's luminance detail
    finer than the painting's resolution."""
    height, width = content.shape[:2]
    small_h, small_w = painted.shape[:2]
    out: FloatArray = np.asarray(
        cv2.resize(painted, (width, height), interpolation=cv2.INTER_CUBIC), dtype=np.float32
    )
    if detail > 0:
        small = cv2.resize(luminance(content), (small_w, small_h), interpolation=cv2.INTER_AREA)
        coarse = np.asarray(
            cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), np.float32
        )
        rows = max(1, _BAND_PIXELS // width)
        for y in range(0, height, rows):  # the luminance again, a band at a time
            fine = np.subtract(luminance(content[y : y + rows]), coarse[y : y + rows])
            fine *= np.float32(detail)
            out[y : y + rows] += fine[..., None]
    np.clip(out, 0.0, 1.0, out=out)  # in place: a 100-MP photo has no room for a copy
    return out


ENGINES: list[EngineSpec] = [
    EngineSpec(
        task="style",
        id="painterly",
        name="Painterly (texture synthesis)",
        params=PainterlyParams,
        run=run_painterly,
        description="Paints the photo with the style image's strokes and colours "
        "(Elad & Milanfar texture synthesis); no model needed.",
        default=True,
        inputs=(EngineInput(STYLE, required=True),),
        uses_device=True,
        gpu_recommended=True,
    ),
    EngineSpec(
        task="style",
        id="color_transfer",
        name="Colour transfer (Reinhard)",
        params=ColourParams,
        run=run_color_transfer,
        description="Gives the photo the style image's average colour and contrast (CIELAB).",
        inputs=(EngineInput(STYLE, required=True),),
    ),
    EngineSpec(
        task="style",
        id="histogram",
        name="Histogram matching",
        params=ColourParams,
        run=run_histogram,
        description="Gives the photo the style image's full distribution of each colour "
        "channel (CIELAB).",
        inputs=(EngineInput(STYLE, required=True),),
    ),
]
