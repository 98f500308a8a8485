"""Built-in deblur engines: blind deblurring that estimates the camera-shake kernel (the
default), non-blind deconvolution for a known point-spread function (hyper-Laplacian prior;
Wiener; Richardson-Lucy) and a fast search over straight-motion and defocus PSFs.

The PSF comes from parameters (`psf` = motion with `length` and `angle`, defocus with
`radius`, gaussian with `sigma`) or from a kernel file (`kernel`: grayscale image or .npy).
The noise level is estimated from the image (at least 1 % of white) unless `noise` is given
(0-255 scale).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field

from studio.core.image import FloatArray, Image
from studio.core.protocol import (
    ESTIMATION_REGION,
    EngineInput,
    EngineSpec,
    JobInputs,
    OpRun,
    Params,
    Progress,
    ReportFigure,
    RunContext,
    applies_when,
)
from studio.engine.device import resolve_device
from studio.engine.ops._denoise_sigma import estimate_sigma
from studio.engine.psf import PsfShape, kernel_from
from studio.engine.tiling import run_tiled

TILE = 1024
MIN_OVERLAP = 32
RL_ITERATIONS = 50
NOISE_FLOOR = 0.01
BLIND_SMOOTHING = 1.0


class _NoiseParams(Params):
    noise: float | None = Field(
        None,
        ge=0.0,
        le=50.0,
        description="Noise level (standard deviation on a 0-255 scale); empty: estimate it, "
        "at least 1 % of white",
    )
    smoothing: float = Field(
        1.0,
        ge=0.1,
        le=20.0,
        description="Regularisation: above 1 fewer artefacts and less noise, below 1 sharper",
    )


class PsfParams(PsfShape, _NoiseParams):
    """A known blur and the noise around it."""


class RichardsonLucyParams(PsfParams):
    iterations: int = Field(
        RL_ITERATIONS,
        ge=1,
        le=500,
        description="Most iterations to run; stops earlier once the result fits the image "
        "to within the noise",
    )


class BlindParams(PsfParams):
    """Estimate the blur (psf = estimate, no kernel file), or remove the blur described."""

    psf: Literal["estimate", "motion", "defocus", "gaussian"] = Field(  # type: ignore[assignment]
        "estimate",
        title="Blur shape",
        description="estimate: find the camera shake in the photo; or a known shape: camera "
        "motion, defocus or Gaussian",
    )
    max_size: int | None = Field(
        None,
        ge=3,
        le=101,
        description="Estimate: largest blur to look for, in pixels; empty: 2 % of the long "
        "side (at least 63)",
        json_schema_extra=applies_when(psf=("estimate",)),
    )


class AutoParams(_NoiseParams):
    family: Literal["any", "motion", "defocus"] = Field(
        "any", description="Which kinds of blur to search for"
    )
    max_size: int = Field(
        31, ge=3, le=101, description="Largest blur to consider, in pixels (streak or diameter)"
    )


def noise_of(image: Image, params: _NoiseParams) -> float:
    """The noise standard deviation in pixel units: as given, else estimated but at least
    NOISE_FLOOR of white, since real photographs carry kernel error and processing that a
    near-zero estimate would let the deconvolution amplify into ringing."""
    if params.noise is not None:
        return params.noise / 255.0
    white = float(np.percentile(image.pixels, 99.5)) if image.meta.is_float else 1.0
    return max(estimate_sigma(image.pixels), NOISE_FLOOR * max(white, 1e-6))


def noise_step(params: _NoiseParams) -> str:
    """What the first step does: estimate the noise, unless the user gave its level."""
    return "Estimating noise" if params.noise is None else f"Noise level {params.noise:g} (given)"


Solver = Callable[[FloatArray, FloatArray], FloatArray]


def deconvolve_tiled(
    image: Image, kernel: FloatArray, solver: Solver, ctx: RunContext, message: str = "Deblurring"
) -> OpRun:
    """Apply `solver(tile, kernel)` over overlapping tiles wide enough to hide the seams (the
    tiling raises a tile under four overlaps to four), progress counted in tiles."""
    overlap = max(MIN_OVERLAP, 2 * max(kernel.shape))
    out = yield from run_tiled(
        image.pixels,
        lambda t: solver(t, kernel),
        tile=ctx.tile or TILE,
        overlap=overlap,
        message=message,
    )
    if not image.meta.is_float:
        np.clip(out, 0.0, 1.0, out=out)
    return image.with_pixels(out)


def _run_solver(
    inputs: JobInputs, params: PsfParams, ctx: RunContext, name: str, damped: bool = False
) -> OpRun:
    """Deconvolve with the named solver of `_deblur_solvers`, tile by tile; `damped`: only
    part of the blur is removed where the kernel fails to explain the photo."""
    from studio.engine.ops import _deblur_solvers
    from studio.engine.ops._deblur_blind_run import matched_strength, weakened

    solver = getattr(_deblur_solvers, name)
    image = inputs.image
    kernel = kernel_from(params)
    yield Progress(0, 1, noise_step(params))
    sigma = noise_of(image, params)
    device = resolve_device(ctx.device)
    strength = matched_strength(image.pixels, kernel, sigma, device) if damped else 1.0
    if strength < 1.0:
        ctx.log(f"The blur given does not match the photo: {strength:.0%} of it is removed")
        kernel = weakened(kernel, strength)
    return (
        yield from deconvolve_tiled(
            image,
            kernel,
            lambda t, k: solver(_deblur_solvers.prepare(t, k, device), sigma, params.smoothing),
            ctx,
        )
    )


def run_hyper_laplacian(inputs: JobInputs, params: PsfParams, ctx: RunContext) -> OpRun:
    return (yield from _run_solver(inputs, params, ctx, "hyper_laplacian"))


def run_wiener(inputs: JobInputs, params: PsfParams, ctx: RunContext) -> OpRun:
    return (yield from _run_solver(inputs, params, ctx, "wiener"))


def run_richardson_lucy(inputs: JobInputs, params: RichardsonLucyParams, ctx: RunContext) -> OpRun:
    from studio.engine.ops._deblur_solvers import prepare, richardson_lucy

    image = inputs.image
    kernel = kernel_from(params)
    yield Progress(0, 1, noise_step(params))
    sigma = noise_of(image, params) * params.smoothing
    device = resolve_device(ctx.device)
    return (
        yield from deconvolve_tiled(
            image,
            kernel,
            lambda t, k: richardson_lucy(prepare(t, k, device), params.iterations, sigma),
            ctx,
        )
    )


def run_blind(inputs: JobInputs, params: BlindParams, ctx: RunContext) -> OpRun:
    """Estimate the kernel on the estimation region (else on the region the effect is limited
    to, else on the busiest window), then deconvolve it all; with a known blur (a shape or a
    kernel file), deconvolve that, damped if it does not match the photo."""
    if params.psf != "estimate" or params.kernel is not None:
        return (yield from _run_solver(inputs, params, ctx, "hyper_laplacian", damped=True))
    from studio.engine.ops._deblur_blind_run import (
        NO_BLUR_MESSAGE,
        estimate_blur,
        kernel_extent,
        trimmed,
    )
    from studio.engine.ops._deblur_solvers import hyper_laplacian, prepare

    image = inputs.image
    yield Progress(0, 1, noise_step(params))
    sigma = noise_of(image, params)
    device = resolve_device(ctx.device)
    drawn = inputs.array(ESTIMATION_REGION)
    region = drawn if drawn is not None else inputs.region
    found = yield from estimate_blur(image.pixels, region, params.max_size, sigma, device)
    if found.kernel is None:
        ctx.log(f"No blur removed: {found.reason}")
        yield Progress(1, 1, NO_BLUR_MESSAGE)
        return image.with_pixels(image.pixels)
    kernel = trimmed(found.kernel)
    width, height = kernel_extent(kernel)
    ctx.report.update(kernel=kernel, kernel_size=[width, height])
    ctx.log(f"Estimated blur kernel: {width}x{height} px")
    smoothing = params.smoothing * BLIND_SMOOTHING
    return (
        yield from deconvolve_tiled(
            image,
            kernel,
            lambda t, k: hyper_laplacian(prepare(t, k, device), sigma, smoothing),
            ctx,
            f"Deblurring with the {width}x{height} px kernel",
        )
    )


def run_auto(inputs: JobInputs, params: AutoParams, ctx: RunContext) -> OpRun:
    from studio.engine.ops._deblur_auto import estimate_psf
    from studio.engine.ops._deblur_solvers import hyper_laplacian, prepare

    image = inputs.image
    yield Progress(0, 1, noise_step(params))
    sigma = noise_of(image, params)
    device = resolve_device(ctx.device)
    yield Progress(0, 1, "Estimating the blur")
    found = estimate_psf(image.pixels, sigma, params.family, params.max_size, device)
    ctx.log(f"Estimated blur: {found.description}")
    if found.kernel is None:
        yield Progress(1, 1, "No blur found: image left as it is")
        return image.with_pixels(image.pixels)
    smoothing = params.smoothing * found.smoothing
    return (
        yield from deconvolve_tiled(
            image,
            found.kernel,
            lambda t, k: hyper_laplacian(prepare(t, k, device), sigma, smoothing),
            ctx,
        )
    )


ENGINES: list[EngineSpec] = [
    EngineSpec(
        task="deblur",
        id="blind",
        name="Automatic shake removal",
        params=BlindParams,
        run=run_blind,
        uses_device=True,
        description="Estimates the camera-shake blur of any shape from the photo (or the "
        "region you draw), then removes it; leaves the photo alone when no blur is clear.",
        default=True,
        inputs=(EngineInput(ESTIMATION_REGION),),
        figures=(ReportFigure("kernel", "Estimated blur kernel"),),
    ),
    EngineSpec(
        task="deblur",
        id="hyper_laplacian",
        name="Sparse-prior deconvolution",
        params=PsfParams,
        run=run_hyper_laplacian,
        uses_device=True,
        description="Removes a known blur while keeping edges crisp and noise low "
        "(hyper-Laplacian prior, Krishnan-Fergus).",
    ),
    EngineSpec(
        task="deblur",
        id="wiener",
        name="Wiener deconvolution",
        params=PsfParams,
        run=run_wiener,
        uses_device=True,
        description="Fast linear deconvolution of a known blur; softer, may ring on strong edges.",
    ),
    EngineSpec(
        task="deblur",
        id="richardson_lucy",
        name="Richardson-Lucy",
        params=RichardsonLucyParams,
        run=run_richardson_lucy,
        uses_device=True,
        description="Classic iterative deconvolution of a known blur; noise grows with iterations.",
    ),
    EngineSpec(
        task="deblur",
        id="auto",
        name="Straight motion or defocus search",
        params=AutoParams,
        run=run_auto,
        uses_device=True,
        description="Searches motion and defocus blurs for the sharpest clean result, then "
        "deconvolves; leaves the image alone when no blur is clear.",
    ),
]
