"""Running a task with a model file: inputs to extras, the executor, results to an Image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from studio.core.errors import BadInputError, MissingInputError, ModelError
from studio.core.image import FloatArray, Image, as_rgb
from studio.core.protocol import (
    MASK,
    STYLE,
    InputKind,
    JobInputs,
    OpRun,
    Progress,
    ResultRun,
    RunContext,
)
from studio.core.stored import SampleStore, store_depth
from studio.engine.neural import crops
from studio.engine.neural.executor import Extras, get_model, run_model, run_model_into
from studio.engine.neural.inference import ValueRange
from studio.engine.neural.model import LoadedModel
from studio.engine.ops.upscale import stored_result
from studio.engine.psf import kernel_from
from studio.engine.tiling import BlockMeans


def run_task(task: str, path: Path, inputs: JobInputs, params: Any, ctx: RunContext) -> ResultRun:
    """Load (or reuse) the model at `path` and run it for `task` on the job's inputs."""
    yield Progress(0, 1, f"Loading {path.name}")
    model = get_model(path, ctx)
    if task not in model.tasks:
        raise ModelError(
            f"{path.name} is a {model.task} model ({model.architecture}), not a {task} model"
        )
    ctx.log(f"{path.name}: {model.describe()}")
    if model.licence_note:
        ctx.log(model.licence_note)
    image = inputs.image
    if task == "upscale":
        return (yield from _upscaled(model, image, params, ctx))
    pixels = image.pixels
    extras = _extras(task, model, inputs, params)
    working, scaled = _working_pixels(task, model, pixels, params)
    if scaled:
        extras.mask = _resize(extras.mask, working.shape[:2]) if extras.mask is not None else None
    bits = image.meta.bit_depth
    if extras.mask is not None and crops.wants_crops(model, working):
        out = yield from crops.inpaint_in_crops(model, working, extras, ctx, bits)
    else:
        out = yield from run_model(model, working, ctx, extras, model.architecture, bits)
    if scaled:
        out = _resize(out, pixels.shape[:2])
        out = out if out.ndim == 3 else out[..., None]
    if task == "inpaint" and inputs.mask is not None:
        out = _composite(as_rgb(pixels) if out.shape[2] == 3 else pixels, out, inputs.mask)
    return image.with_pixels(out)


def _upscaled(model: LoadedModel, image: Image, params: Any, ctx: RunContext) -> ResultRun:
    """The model's enlargement, its rows stored as they are finished (no float32 result); a
    scale that divides the model's (2x from a 4x model) is reduced on the way, by area."""
    scale = params.scale or model.scale
    reduction = _whole_reduction(model.scale, scale)
    height, width = image.height * model.scale, image.width * model.scale
    store = SampleStore(height // reduction, width // reduction, store_depth(image.meta))
    sink = store.put if reduction == 1 else BlockMeans(store.put, reduction)
    bits = image.meta.bit_depth
    yield from run_model_into(model, image.pixels, ctx, sink, model.architecture, bits)
    return stored_result(image, store.samples, scale)


def _whole_reduction(model_scale: int, scale: float) -> int:
    """The whole number the model's scale is `scale` times, else 1."""
    ratio = model_scale / scale
    return round(ratio) if ratio > 1 and abs(ratio - round(ratio)) < 1e-9 else 1


def _extras(task: str, model: LoadedModel, inputs: JobInputs, params: Any) -> Extras:
    extras = Extras(sigma=float(getattr(params, "sigma", 0.0)) / 255.0)
    if "mask" in model.extras:
        if inputs.mask is None:
            raise _missing(model, MASK)
        extras.mask = inputs.mask.astype(np.float32)
    if "hints" in model.extras and inputs.hints is not None:
        extras.hints = inputs.hints.astype(np.float32)
    if "style" in model.extras:
        if inputs.style is None:
            raise _missing(model, STYLE)
        longest = int(getattr(params, "max_size", 0)) or 512
        extras.style = crops.shrunk(as_rgb(inputs.style.pixels), longest)
        extras.alpha = float(getattr(params, "strength", 1.0))
    return extras


def _missing(model: LoadedModel, kind: InputKind) -> MissingInputError:
    """For inputs a model needs that its task's engines do not all need."""
    texts = kind.missing
    return MissingInputError(texts.window, f"{model.architecture}: {texts.cli}")


def _working_pixels(
    task: str, model: LoadedModel, pixels: FloatArray, params: Any
) -> tuple[FloatArray, bool]:
    """Whole-image style models run at `max_size` on the longer side; others at full size."""
    max_size = int(getattr(params, "max_size", 0))
    if task != "style" or not max_size or max(pixels.shape[:2]) <= max_size:
        return pixels, False
    return crops.shrunk(pixels, max_size), True


def _resize(array: FloatArray, shape: tuple[int, int]) -> FloatArray:
    out = cv2.resize(array, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.asarray(out, dtype=np.float32)


def _composite(original: FloatArray, filled: FloatArray, mask: FloatArray) -> FloatArray:
    weight = np.clip(mask, 0.0, 1.0)[..., None]
    return np.asarray(filled * weight + original * (1.0 - weight), dtype=np.float32)


def run_pnp(task: str, path: Path, inputs: JobInputs, params: Any, ctx: RunContext) -> OpRun:
    """Plug-and-play deblur or inpaint with the denoiser at `path` as the prior."""
    from studio.engine.neural import pnp

    yield Progress(0, 1, f"Loading {path.name}")
    denoiser = get_model(path, ctx)
    if "denoise" not in denoiser.tasks:
        raise BadInputError(
            f"{path.name} is a {denoiser.task} model ({denoiser.architecture}); plug-and-play "
            "needs a Gaussian denoiser (FFDNet, DRUNet, DnCNN)"
        )
    image = inputs.image
    # A float photo is solved in the denoiser's [0, 1] and mapped back, never clipped.
    scale = ValueRange.of(image.pixels) if image.meta.is_float else ValueRange()
    pixels = (image.pixels - scale.low) / scale.span
    if task == "deblur":
        kernel = kernel_from(params)
        noise = params.noise / 255.0 / scale.span
        out = yield from pnp.deblur(denoiser, pixels, kernel, noise, ctx, params.iterations)
    else:
        assert inputs.mask is not None, "check_inputs ensures the mask"
        out = yield from pnp.inpaint(denoiser, pixels, inputs.mask, ctx, params.iterations)
    return image.with_pixels(np.clip(out, 0.0, 1.0) * scale.span + scale.low)
