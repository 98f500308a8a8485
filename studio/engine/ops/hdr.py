"""Built-in hdr engines: exposure fusion, radiance merge, and tone mapping.

`fusion` (the default) blends the brackets straight into a display image (Mertens et al.
2007): one click, no exposure times needed, no tone mapping step, which is what most
photographers mean by "HDR from brackets". `merge` recovers the camera response and the
scene radiance as a float image (.hdr/.exr/.tif) with ghost suppression; `tonemap` turns
such a radiance image into a display image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator

from studio.core.errors import BadInputError
from studio.core.image import FloatArray, Image, ImageMeta
from studio.core.imageio import srgb_encoded
from studio.core.protocol import (
    BRACKETS,
    EngineInput,
    EngineSpec,
    JobInputs,
    OpRun,
    Params,
    Progress,
    RunContext,
)
from studio.engine.ops import _hdr_brackets as brackets
from studio.engine.ops import _hdr_fusion as fusion
from studio.engine.ops import _hdr_merge as merge
from studio.engine.ops import _hdr_response as response
from studio.engine.ops import _hdr_tonemap as tonemap

DISPLAY_BIT_DEPTH = 16  # fused and tone-mapped results have more than 8 bits of tone


class _AlignParams(Params):
    align: bool = Field(True, description="Align hand-held brackets (median threshold bitmaps)")
    max_shift: int = Field(64, ge=1, le=512, description="Largest shift to search, in pixels")


class MergeParams(_AlignParams):
    times: tuple[float, ...] | None = Field(
        None,
        description="Exposure times in seconds, in input order (e.g. 1/250,1/60,1/15); "
        "default: read from EXIF",
    )
    response: Literal["auto", "debevec", "linear", "srgb"] = Field(
        "auto",
        description="Camera response: auto (linear for camera RAW brackets, which Studio "
        "develops without a tone curve; else calibrated), calibrated from the brackets "
        "(Debevec & Malik), linear (RAW, or linear TIFFs from a raw converter), or sRGB",
    )
    deghost: bool = Field(True, description="Suppress ghosts of objects that moved between shots")
    ghost_tolerance: float = Field(
        0.5,
        gt=0.05,
        le=4.0,
        description="Stops a bracket may differ from the reference before it counts as a ghost",
    )
    reference: int | None = Field(
        None,
        ge=1,
        description="Bracket whose moving objects are kept (1 = first input); "
        "default: the best exposed",
    )

    @field_validator("times", mode="before")
    @classmethod
    def _parse_times(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.replace(";", ",").replace(" ", ",").split(",") if part]
        if isinstance(value, list | tuple):
            return tuple(_exposure_time(v) if isinstance(v, str) else v for v in value)
        return value


def _exposure_time(text: str) -> float:
    """Seconds from '1/60', '0.5' or '2'; a ValueError (a clear parameter error) otherwise."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not an exposure time in seconds") from None


class FusionParams(_AlignParams):
    contrast_weight: float = Field(
        1.0, ge=0.0, le=10.0, description="Preference for detailed pixels"
    )
    saturation_weight: float = Field(
        1.0, ge=0.0, le=10.0, description="Preference for colourful pixels"
    )
    exposure_weight: float = Field(
        1.0, ge=0.0, le=10.0, description="Preference for mid-tone pixels"
    )


class TonemapParams(Params):
    operator: Literal["local", "reinhard", "drago", "mantiuk"] = Field(
        "local",
        description="local: Durand-Dorsey detail-preserving; reinhard: photographic global; "
        "drago: logarithmic; mantiuk: contrast-domain",
    )
    exposure: float = Field(0.0, ge=-4.0, le=4.0, description="Brightness adjustment in stops")
    contrast: float = Field(
        5.0, ge=1.0, le=16.0, description="local: stops of large-scale contrast kept"
    )
    detail: float = Field(1.2, ge=0.0, le=4.0, description="local: gain on fine detail")
    saturation: float = Field(
        1.0, ge=0.0, le=2.0, description="local, drago, mantiuk: colour saturation"
    )
    intensity: float = Field(0.0, ge=-8.0, le=8.0, description="reinhard: brightness")
    light_adapt: float = Field(
        0.0, ge=0.0, le=1.0, description="reinhard: 0 global, 1 local light adaptation"
    )
    color_adapt: float = Field(
        0.0, ge=0.0, le=1.0, description="reinhard: 0 keep colours, 1 neutralise casts"
    )
    bias: float = Field(0.85, ge=0.5, le=1.0, description="drago: lower is brighter in the shadows")
    scale: float = Field(0.7, ge=0.1, le=1.0, description="mantiuk: contrast scale")


def _check_brackets(images: Sequence[Image]) -> None:
    brackets.check_same_size(images)
    if any(image.meta.is_float for image in images):
        raise BadInputError(
            "Brackets must be ordinary 8- or 16-bit photos; to tone-map a radiance image use "
            "the tonemap engine"
        )


def _shifts(
    images: Sequence[Image],
    exposure: npt.NDArray[np.float64],
    reference: int,
    params: _AlignParams,
    ctx: RunContext,
) -> list[brackets.Shift]:
    """Alignment shifts; `exposure` orders the brackets from dark to bright."""
    if not params.align:
        return [(0, 0)] * len(images)
    greys = [brackets.grey_preview(image) for image in images]
    shifts = brackets.align_shifts(greys, exposure, reference, params.max_shift)
    if any(shift != (0, 0) for shift in shifts):
        ctx.log("Alignment shifts (dy, dx): " + ", ".join(str(s) for s in shifts))
    return shifts


def _output_meta(image: Image, bit_depth: int) -> ImageMeta:
    return dataclasses.replace(image.meta, bit_depth=bit_depth, exposure_time=None, linear=False)


def _channels_like(images: Sequence[Image], rgb: FloatArray) -> FloatArray:
    """Grey brackets give a grey result."""
    return rgb[..., :1] if all(image.channels == 1 for image in images) else rgb


def run_merge(inputs: JobInputs, params: MergeParams, ctx: RunContext) -> OpRun:
    images = inputs.images
    _check_brackets(images)
    times = brackets.exposure_times(images, params.times)
    if params.times is not None and any(image.meta.exposure_time for image in images):
        ctx.log("Using the exposure times given, not those in EXIF")
    yield Progress(0, 1, "Checking exposure times")
    previews = [brackets.grey_preview(image, 512) for image in images]
    brackets.check_times_match_images(images, times, previews)
    if params.reference is not None and params.reference > len(images):
        raise BadInputError(
            f"Reference bracket {params.reference} does not exist: there are {len(images)}"
        )
    reference = (
        params.reference - 1 if params.reference else brackets.reference_index(previews, times)
    )
    yield Progress(0, 1, "Aligning brackets")
    shifts = _shifts(images, times, reference, params, ctx)
    yield Progress(0, 1, "Calibrating the camera response")
    log_response, images = _response(images, shifts, times, params.response, ctx)
    tolerance = params.ghost_tolerance if params.deghost else None
    radiance = yield from merge.merge_radiance(
        images, times, log_response, shifts, reference, tolerance
    )
    reference_image = images[reference]
    return Image(_channels_like(images, radiance), _output_meta(reference_image, 32))


def _response(
    images: Sequence[Image],
    shifts: Sequence[brackets.Shift],
    times: npt.NDArray[np.float64],
    choice: Literal["auto", "debevec", "linear", "srgb"],
    ctx: RunContext,
) -> tuple[response.Response, tuple[Image, ...]]:
    """The camera response to merge with, and the brackets as that response reads them.

    Camera RAW brackets are linear light and merge as they are; a response that assumes
    encoded values (calibrated, sRGB) gets them sRGB-encoded.
    """
    raw = all(image.meta.is_linear_photo for image in images)
    if choice == "linear" or (choice == "auto" and raw):
        if raw:
            ctx.log("RAW brackets: merging their linear light directly (no response calibration)")
        return response.LINEAR_LIGHT, tuple(images)
    encoded = tuple(srgb_encoded(image) for image in images)
    method = "debevec" if choice == "auto" else choice
    calibration = response.calibration_images(encoded, shifts)
    return response.calibrate_response(calibration, times, method), encoded


def run_fusion(inputs: JobInputs, params: FusionParams, ctx: RunContext) -> OpRun:
    images = inputs.images
    _check_brackets(images)
    yield Progress(0, 1, "Aligning brackets")
    previews = [brackets.grey_preview(image, 512) for image in images]
    brightness = np.array([float(p.mean()) for p in previews])
    reference = brackets.reference_index(previews, brightness)
    shifts = _shifts(images, brightness, reference, params, ctx)
    preferences = fusion.Preferences(
        params.contrast_weight, params.saturation_weight, params.exposure_weight
    )
    channels = 1 if all(image.channels == 1 for image in images) else 3
    fused = yield from fusion.fuse(
        [fusion.Bracket(image.pixels, shift) for image, shift in zip(images, shifts, strict=True)],
        channels,
        preferences,
    )
    return Image(fused, _output_meta(images[reference], DISPLAY_BIT_DEPTH))


def run_tonemap(inputs: JobInputs, params: TonemapParams, ctx: RunContext) -> OpRun:
    image = inputs.image
    radiance = tonemap.clean_radiance(image.pixels)
    if not image.meta.is_float:
        ctx.log("The input is not a radiance image: tone mapping its linearised pixels")
        radiance = tonemap.srgb_decode(radiance, out=radiance)
    yield Progress(0, 1, f"Tone mapping ({params.operator})")
    if params.operator == "reinhard":
        linear = tonemap.reinhard(
            radiance, params.intensity, params.light_adapt, params.color_adapt
        )
    elif params.operator == "drago":
        linear = tonemap.drago(radiance, params.saturation, params.bias)
    elif params.operator == "mantiuk":
        linear = tonemap.mantiuk(radiance, params.scale, params.saturation)
    else:
        settings = tonemap.LocalSettings(
            params.contrast, params.detail, params.saturation, 0.02, 0.5
        )
        linear = tonemap.local(radiance, settings, out=radiance)
    del radiance
    display = tonemap.display(np.nan_to_num(linear, copy=False), params.exposure)
    yield Progress(1, 1, "Tone mapped")
    pixels = display[..., :1] if image.channels == 1 else display
    return Image(pixels, _output_meta(image, DISPLAY_BIT_DEPTH), image.alpha)


ENGINES: list[EngineSpec] = [
    EngineSpec(
        task="hdr",
        id="fusion",
        name="Exposure fusion (Mertens)",
        params=FusionParams,
        run=run_fusion,
        description="Blends the best-exposed parts of each bracket into a finished photo; "
        "needs no exposure times.",
        default=True,
        inputs=(EngineInput(BRACKETS, required=True),),
    ),
    EngineSpec(
        task="hdr",
        id="merge",
        name="Radiance merge (Debevec)",
        params=MergeParams,
        run=run_merge,
        description="Recovers the camera response and merges the brackets into a float "
        "radiance image (.hdr/.exr/.tif), removing ghosts of moving objects.",
        inputs=(EngineInput(BRACKETS, required=True),),
        linear_light=True,
    ),
    EngineSpec(
        task="hdr",
        id="tonemap",
        name="Tone mapping",
        params=TonemapParams,
        run=run_tonemap,
        description="Turns a radiance image into a display image "
        "(local, Reinhard, Drago, Mantiuk).",
    ),
]
