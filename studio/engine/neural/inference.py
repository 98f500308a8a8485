"""One window of an image through a model: range, channels, padding, extras, precision.

Models take and give images in [0, 1]. A float photo whose values leave that range (linear
radiance up to 5.7, say) is scaled into it for the model and back afterwards, so the model
never clips it. Half precision falls back to float32 for good when it fails (an exception
such as LaMa's FFTs rejecting bfloat16, or NaN/Inf in the result), and its agreement with
float32 is measured on the first window when the precision policy asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from studio.core.image import FloatArray
from studio.core.protocol import RunContext
from studio.engine.memory import first_line, is_out_of_memory, is_unrecoverable_gpu_error
from studio.engine.neural import precision
from studio.engine.neural.model import Conditioning, LoadedModel

LUMA = (0.2126, 0.7152, 0.0722)


@dataclass
class Extras:
    """Inputs besides the image, as numpy arrays at the image's size (or a style image)."""

    sigma: float = 0.0
    mask: FloatArray | None = None
    hints: FloatArray | None = None
    style: FloatArray | None = None
    alpha: float = 1.0


@dataclass(frozen=True)
class ValueRange:
    """The image's values map to the model's [0, 1] as (value - low) / span."""

    low: float = 0.0
    span: float = 1.0

    @classmethod
    def of(cls, pixels: FloatArray) -> ValueRange:
        """[0, 1] widened to hold every finite value of `pixels`."""
        finite = pixels[np.isfinite(pixels)] if not np.isfinite(pixels).all() else pixels
        if finite.size == 0:
            return cls()
        low = min(0.0, float(finite.min()))
        high = max(1.0, float(finite.max()))
        return cls(low, high - low)


@dataclass
class WindowRun:
    """Mutable state of one execution: where, how precise, which range."""

    model: LoadedModel
    device: torch.device
    extras: Extras
    ctx: RunContext
    autocast: torch.dtype | None = None
    measure_agreement: bool = False
    allow_tf32: bool = False
    batch_channels: bool = False
    value_range: ValueRange = ValueRange()


def infer(run: WindowRun, window: FloatArray, origin: tuple[int, int]) -> FloatArray:
    """One window (h, w, C) through the model; (h, w, C') float32 out, in the image's range."""
    x = torch.from_numpy(np.ascontiguousarray(window)).to(run.device)
    result: FloatArray = infer_on_device(run, x, origin).to("cpu").numpy()
    return result


@torch.inference_mode()
def infer_on_device(run: WindowRun, window: torch.Tensor, origin: tuple[int, int]) -> torch.Tensor:
    """`infer` for a window (h, w, C) already on the run's device; the result stays there."""
    model, scale = run.model, run.value_range
    h, w, channels = window.shape
    x = window.permute(2, 0, 1).unsqueeze(0)
    if scale != ValueRange():
        x = (x - scale.low) / scale.span
    x = _to_model_channels(x, model, run.batch_channels)
    x, pad = _pad(x, model)
    cond = _conditioning(run, origin, (h, w), pad)
    y = forward(run, x, cond)
    y = y[..., : h * model.scale, : w * model.scale]
    y = _from_model_channels(y, model, channels, run.batch_channels).clamp_(0.0, 1.0)
    if scale != ValueRange():
        y = y * scale.span + scale.low
    return y.squeeze(0).permute(1, 2, 0).float()


def forward(run: WindowRun, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """The model's output in float32: in half precision when that works, else float32."""
    if run.autocast is not None and run.measure_agreement:
        _measure_agreement(run, x, cond)
    if run.autocast is not None:
        y = _half_forward(run, x, cond)
        if y is not None:
            return y
    with precision.float32_matmul(run.allow_tf32):
        return run.model.forward(run.model.module, x, cond).float()


def _half_forward(run: WindowRun, x: torch.Tensor, cond: Conditioning) -> torch.Tensor | None:
    """The half-precision result, or None (and float32 from now on) when it fails."""
    dtype = run.autocast
    assert dtype is not None
    failure = None
    try:
        with torch.autocast(device_type=run.device.type, dtype=dtype):
            y = run.model.forward(run.model.module, x, cond).float()
    except Exception as err:
        if is_out_of_memory(err) or is_unrecoverable_gpu_error(err):
            raise
        failure = first_line(err)
    else:
        if bool(torch.isfinite(y).all()):
            return y
        failure = "NaN or Inf in the result"
        del y
    _use_float32(run, f"failed in {_name(dtype)} ({failure})")
    return None


def _measure_agreement(run: WindowRun, x: torch.Tensor, cond: Conditioning) -> None:
    """Compare half precision with float32 on a centre crop of this window, once per model."""
    dtype = run.autocast
    assert dtype is not None
    run.measure_agreement = False
    probe_x, probe_cond = _centre_crop(x, cond, run.model)
    with precision.float32_matmul(False):
        reference = run.model.forward(run.model.module, probe_x, probe_cond).float()
    half = _half_forward(run, probe_x, probe_cond)
    if half is None:
        return
    agreement = precision.agreement_db(reference.clamp(0, 1), half.clamp(0, 1))
    if precision.remember_agreement(run.model, run.device, dtype, agreement):
        run.ctx.log(f"{run.model.architecture} in {_name(dtype)}: {agreement:.1f} dB from float32")
    else:
        _use_float32(run, f"agrees with float32 to only {agreement:.1f} dB in {_name(dtype)}")


def _use_float32(run: WindowRun, why: str) -> None:
    run.ctx.log(f"{run.model.architecture} {why}: running it in float32 from now on")
    precision.remember_float32_only(run.model)
    run.autocast = None


def _name(dtype: torch.dtype) -> str:
    return {torch.float16: "float16", torch.bfloat16: "bfloat16"}.get(dtype, str(dtype))


def _centre_crop(
    x: torch.Tensor, cond: Conditioning, model: LoadedModel
) -> tuple[torch.Tensor, Conditioning]:
    req = model.size_requirements
    side = max(_ceil_to(precision.PROBE_SIDE, req.multiple_of), req.minimum)
    h, w = x.shape[-2:]
    if h <= side and w <= side:
        return x, cond
    ch, cw = min(h, side), min(w, side)
    y0 = (h - ch) // 2 // req.multiple_of * req.multiple_of
    x0 = (w - cw) // 2 // req.multiple_of * req.multiple_of

    def crop(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[..., y0 : y0 + ch, x0 : x0 + cw]

    cropped = Conditioning(
        sigma=cond.sigma,
        mask=crop(cond.mask),
        hints=crop(cond.hints),
        style=cond.style,
        alpha=cond.alpha,
    )
    result = crop(x)
    assert result is not None
    return result, cropped


def keeps_channels(model: LoadedModel) -> bool:
    """Restoration keeps a grey photo grey; colorize and style models make it RGB."""
    return model.out_channels == model.in_channels and model.task not in ("colorize", "style")


def _to_model_channels(x: torch.Tensor, model: LoadedModel, batch_channels: bool) -> torch.Tensor:
    channels = x.shape[1]
    if channels == model.in_channels:
        return x
    if batch_channels:
        return x.permute(1, 0, 2, 3)  # RGB as a batch of three grey images
    if model.in_channels == 1:
        weights = torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    return x.expand(-1, model.in_channels, -1, -1)


def _from_model_channels(
    y: torch.Tensor, model: LoadedModel, channels: int, batch_channels: bool
) -> torch.Tensor:
    if batch_channels:
        return y.permute(1, 0, 2, 3)
    if keeps_channels(model) and y.shape[1] != channels:
        return y.mean(1, keepdim=True) if channels == 1 else y.expand(-1, channels, -1, -1)
    return y


def _pad(x: torch.Tensor, model: LoadedModel) -> tuple[torch.Tensor, tuple[int, int]]:
    req = model.size_requirements
    h, w = x.shape[-2:]
    target_h = max(_ceil_to(h, req.multiple_of), req.minimum)
    target_w = max(_ceil_to(w, req.multiple_of), req.minimum)
    pad_h, pad_w = target_h - h, target_w - w
    if pad_h == 0 and pad_w == 0:
        return x, (0, 0)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return functional.pad(x, (0, pad_w, 0, pad_h), mode=mode), (pad_h, pad_w)


def _ceil_to(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _conditioning(
    run: WindowRun, origin: tuple[int, int], size: tuple[int, int], pad: tuple[int, int]
) -> Conditioning:
    extras, device = run.extras, run.device
    (y0, x0), (h, w) = origin, size

    def spatial(array: FloatArray | None) -> torch.Tensor | None:
        if array is None:
            return None
        crop = array[y0 : y0 + h, x0 : x0 + w]
        crop = crop[..., None] if crop.ndim == 2 else crop
        t = torch.from_numpy(np.ascontiguousarray(crop)).to(device).permute(2, 0, 1).unsqueeze(0)
        return functional.pad(t, (0, pad[1], 0, pad[0]), mode="replicate") if any(pad) else t

    style = None
    if extras.style is not None:
        style = (
            torch.from_numpy(np.ascontiguousarray(extras.style))
            .to(device)
            .permute(2, 0, 1)
            .unsqueeze(0)
        )
    return Conditioning(
        sigma=extras.sigma / run.value_range.span,
        mask=spatial(extras.mask),
        hints=spatial(extras.hints),
        style=style,
        alpha=extras.alpha,
    )
