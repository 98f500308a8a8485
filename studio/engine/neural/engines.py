"""Neural engines for the registry: one `model` engine per task, plus installed models.

Imported when the registry is built, so it must stay torch-free: the work happens in
`studio.engine.neural.runner`, imported when a job runs. It never imports the model store:
the registry hands it the installed models' records.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, create_model

from studio.core.protocol import (
    AVAILABLE,
    HINTS,
    MASK,
    STYLE,
    Availability,
    EngineInput,
    EngineSpec,
    JobInputs,
    Kind,
    NoParams,
    OpRun,
    Params,
    ResultRun,
    RunContext,
    Size,
)
from studio.core.registry import Registry
from studio.engine.ops.upscale import enlarged_size
from studio.engine.psf import PsfShape

MODEL_TASKS = ("denoise", "deblur", "inpaint", "hdr", "colorize", "style", "upscale")
NEEDS_MODEL = "needs a model file: import one into your models, or choose a model file to run"


class DenoiseModelParams(Params):
    sigma: float = Field(
        25.0,
        ge=0.0,
        le=100.0,
        description="Noise level on the 0-255 scale, for models with a noise-level input "
        "(FFDNet, DRUNet): higher removes more noise and more detail",
    )


class StyleModelParams(Params):
    strength: float = Field(
        1.0, ge=0.0, le=1.0, description="How much of the style to apply (AdaIN models)"
    )
    max_size: int = Field(
        1024,
        ge=0,
        le=8192,
        description="Stylise at most this many pixels on the longer side and scale the result "
        "back (style models see the whole image); 0 keeps the full size",
    )


class UpscaleModelParams(Params):
    scale: float | None = Field(
        None,
        ge=1.0,
        le=8.0,
        description="How many times wider and taller the result is; empty: the model's own "
        "scale (a different scale resizes the model's result)",
    )


class PnPDeblurParams(PsfShape):
    noise: float = Field(
        2.55, ge=0.0, le=50.0, description="Noise in the blurred photo, on the 0-255 scale"
    )
    iterations: int = Field(8, ge=1, le=50, description="Solver iterations: more is slower")


class PnPInpaintParams(Params):
    iterations: int = Field(16, ge=1, le=100, description="Solver iterations: more is slower")


PARAMS: dict[str, type[Params]] = {
    "denoise": DenoiseModelParams,
    "style": StyleModelParams,
    "upscale": UpscaleModelParams,
}


def _upscaled_size(size: Size, params: UpscaleModelParams) -> Size | None:
    """The asked scale's size; unknown until the model is loaded when none is asked."""
    return enlarged_size(size, params.scale) if params.scale else None


RESULT_SIZE: dict[str, Callable[[Size, Any], Size | None]] = {"upscale": _upscaled_size}

INPUTS: dict[str, tuple[EngineInput, ...]] = {
    "inpaint": (EngineInput(MASK, required=True),),
    "colorize": (EngineInput(HINTS),),  # models with a hint input (SIGGRAPH17) use them
    "style": (EngineInput(STYLE),),  # models with a style input (AdaIN) need one
}

DESCRIPTIONS = {
    "denoise": "A published denoising network (DnCNN, FFDNet, DRUNet, SCUNet, ...)",
    "deblur": "A published deblurring network (NAFNet, FFTformer, Restormer, ...)",
    "inpaint": "A published inpainting network (LaMa, MAT) filling the masked area",
    "hdr": "A single-photo exposure network (Zero-DCE) for under-exposed photos",
    "colorize": "A published colorization network (Zhang et al., DDColor); SIGGRAPH17 uses hints",
    "style": "A style network: fast neural style, CycleGAN painters, AdaIN with a style image",
    "upscale": "A published super-resolution network (Real-ESRGAN, SwinIR, HAT, DAT, SPAN, ...)",
}


def _runner(
    task: str, fixed_path: Path | None
) -> Callable[[JobInputs, Any, RunContext], ResultRun]:
    def run(inputs: JobInputs, params: Any, ctx: RunContext) -> ResultRun:
        from studio.engine.neural.runner import run_task

        path = fixed_path or ctx.model_path
        assert path is not None
        return (yield from run_task(task, Path(path), inputs, params, ctx))

    return run


def _needs_model_file(ctx: RunContext) -> Availability:
    if ctx.model_path is None:
        return Availability(False, NEEDS_MODEL)
    if not Path(ctx.model_path).is_file():
        return Availability(False, f"model file not found: {ctx.model_path}")
    return AVAILABLE


def model_engines() -> list[EngineSpec]:
    """The `model` engine of each task: runs the file given as `ctx.model_path` (--model)."""
    return [
        EngineSpec(
            task=task,
            id="model",
            name="Model file",
            params=PARAMS.get(task, NoParams),
            run=_runner(task, None),
            description=DESCRIPTIONS[task],
            kind=Kind.NEURAL,
            inputs=INPUTS.get(task, ()),
            uses_device=True,
            gpu_recommended=True,
            available=_needs_model_file,
            result_size=RESULT_SIZE.get(task),
        )
        for task in MODEL_TASKS
    ]


def installed_engines(records: Sequence[Any]) -> Iterator[EngineSpec]:
    """One engine per installed model (the model store's records)."""
    for record in records:
        spec = _installed_spec(record)
        if spec is not None:
            yield spec


def _installed_spec(record: Any) -> EngineSpec | None:
    task, engine_id = getattr(record, "task", None), getattr(record, "id", None)
    path = getattr(record, "path", None)
    if task not in MODEL_TASKS or not engine_id or path is None:
        return None
    licence = str(getattr(record, "licence", "") or "")
    model_path = Path(path)

    def available(ctx: RunContext) -> Availability:
        if model_path.is_file():
            return AVAILABLE
        return Availability(False, f"its model file is missing: {model_path}")

    recommended = getattr(record, "params", None) or {}
    return EngineSpec(
        task=task,
        id=str(engine_id),
        name=str(getattr(record, "name", "") or engine_id),
        params=with_defaults(PARAMS.get(task, NoParams), recommended),
        run=_runner(task, model_path),
        description=str(getattr(record, "description", "") or DESCRIPTIONS[task]),
        kind=Kind.NEURAL,
        inputs=INPUTS.get(task, ()),
        licence=licence,
        uses_device=True,
        gpu_recommended=True,
        available=available,
        result_size=RESULT_SIZE.get(task),
    )


PRIOR_ARCHITECTURES = ("FFDNet", "DRUNet", "DnCNN")
NEEDS_DENOISER = (
    "needs a Gaussian denoiser (FFDNet, DRUNet or DnCNN): import one into your models, or "
    "choose one as the model file to run"
)


def installed_denoiser(records: Sequence[Any]) -> Path | None:
    """The installed Gaussian denoiser PnP uses when no --model is given: FFDNet first."""
    for architecture in PRIOR_ARCHITECTURES:
        for record in records:
            if getattr(record, "architecture", "") == architecture and record.task == "denoise":
                return Path(record.path)
    return None


def _prior_available(prior: Path | None) -> Callable[[RunContext], Availability]:
    def available(ctx: RunContext) -> Availability:
        if ctx.model_path is not None:
            return _needs_model_file(ctx)
        return AVAILABLE if prior is not None else Availability(False, NEEDS_DENOISER)

    return available


def _pnp_runner(task: str, prior: Path | None) -> Callable[[JobInputs, Any, RunContext], OpRun]:
    def run(inputs: JobInputs, params: Any, ctx: RunContext) -> OpRun:
        from studio.engine.neural.runner import run_pnp

        path = ctx.model_path or prior
        assert path is not None
        return (yield from run_pnp(task, Path(path), inputs, params, ctx))

    return run


def pnp_engines(records: Sequence[Any]) -> list[EngineSpec]:
    """Plug-and-play deblurring and scattered-damage inpainting with a denoiser prior: the
    model file given, else the installed denoiser among `records`."""
    prior = installed_denoiser(records)
    common: dict[str, Any] = {
        "kind": Kind.NEURAL,
        "uses_device": True,
        "gpu_recommended": True,
        "available": _prior_available(prior),
    }
    return [
        EngineSpec(
            task="deblur",
            id="pnp",
            name="Plug-and-play (denoiser prior)",
            params=PnPDeblurParams,
            run=_pnp_runner("deblur", prior),
            description="Non-blind deblurring with a known blur, a denoising network as the prior",
            **common,
        ),
        EngineSpec(
            task="inpaint",
            id="pnp",
            name="Plug-and-play (denoiser prior)",
            params=PnPInpaintParams,
            run=_pnp_runner("inpaint", prior),
            description="Fills scattered damage (dust, scratches, missing pixels) under the mask",
            inputs=INPUTS["inpaint"],
            **common,
        ),
    ]


def with_defaults(params: type[Params], values: Mapping[str, Any]) -> type[Params]:
    """`params` with the model's recommended values as defaults (bounds and help kept)."""
    fields: dict[str, Any] = {}
    for name, value in values.items():
        info = params.model_fields.get(name)
        if info is None:
            continue
        field = copy.copy(info)
        field.default = value
        fields[name] = (info.annotation, field)
    if not fields:
        return params
    return create_model(params.__name__, __base__=params, **fields)


def register_engines(registry: Registry, installed: Sequence[Any] = ()) -> None:
    """Add the neural engines, `installed` being the model store's records; installed models
    never replace an engine already registered."""
    for spec in [*model_engines(), *pnp_engines(installed)]:
        registry.register(spec)
    taken = {(s.task, s.id) for task in MODEL_TASKS for s in registry.engines(task)}
    for spec in installed_engines(installed):
        if (spec.task, spec.id) not in taken:
            registry.register(spec)
            taken.add((spec.task, spec.id))
