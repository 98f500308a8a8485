"""The one executor for every neural model: device, precision, padding, tiling, memory.

`run_model` converts numpy to torch tiles, pads them to the model's size requirements, runs
them tiled with overlap when the image or the free memory demands it (never for models that
must see the whole image), halves the tile on out-of-memory, falls back to the CPU, and
redoes a half-precision result in float32 when it holds NaN or Inf. The input array is read
tile by tile and results are blended into one output array, so host memory stays near one
input plus one output image.
"""

from __future__ import annotations

import gc
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from studio.core.errors import ModelError, OutOfMemoryError
from studio.core.image import FloatArray
from studio.core.protocol import Progress, RunContext
from studio.core.tiling import tile_grid
from studio.engine.device import resolve_device
from studio.engine.neural.loader import load_model
from studio.engine.neural.model import Conditioning, LoadedModel
from studio.engine.tiling import run_tiled

CACHE_KEY = "neural.models"
MAX_CACHED_MODELS = 2
MIN_TILE = 64
TILE_STEP = 32
GPU_BUDGET = 0.8
CPU_BUDGET = 0.5
ACTIVATION_FACTOR = 8  # live activations per pixel, in units of the widest layer
CPU_TILE = 256  # cache-sized CPU tiles run 1.4-3x faster than whole images (neural --tile-sweep)

WindowFn = Callable[[FloatArray, int, int], FloatArray]


@dataclass
class Extras:
    """Inputs besides the image, as numpy arrays at the image's size (or a style image)."""

    sigma: float = 0.0
    mask: FloatArray | None = None
    hints: FloatArray | None = None
    style: FloatArray | None = None
    alpha: float = 1.0


# --------------------------------------------------------------------------- model cache


def get_model(path: Path, ctx: RunContext) -> LoadedModel:
    """The model at `path` on the job's device, loaded once and kept in `ctx.cache`."""
    device = resolve_device(ctx.device)
    if not path.is_file():
        raise ModelError(f"Model file not found: {path}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(device))
    cache: OrderedDict[tuple[object, ...], LoadedModel] = ctx.cache.setdefault(
        CACHE_KEY, OrderedDict()
    )
    model = cache.get(key)
    if model is None:
        model = load_model(path)
        cache[key] = model
        while len(cache) > MAX_CACHED_MODELS:
            cache.popitem(last=False)
            _free_memory()
    cache.move_to_end(key)
    model.module.to(device)
    return model


# --------------------------------------------------------------------------- memory


def free_bytes(device: torch.device) -> int:
    """Memory a job may use now: CUDA's free memory, or the RAM the OS reports available."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    return _available_ram()


def _available_ram() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def _widest_layer(model: LoadedModel) -> int:
    widths = [
        int(getattr(m, "out_channels", 0) or getattr(m, "out_features", 0))
        for m in model.module.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear)
    ]
    return max(widths, default=64)


def bytes_per_pixel(model: LoadedModel, element_bytes: int, batch: int) -> int:
    return element_bytes * batch * ACTIVATION_FACTOR * _widest_layer(model)


def auto_tile(
    model: LoadedModel,
    height: int,
    width: int,
    device: torch.device,
    element_bytes: int,
    batch: int = 1,
) -> int | None:
    """A tile side that fits the free memory (and, on the CPU, the caches), or None when the
    whole image fits."""
    share = GPU_BUDGET if device.type == "cuda" else CPU_BUDGET
    budget = share * free_bytes(device) - model.parameter_bytes
    max_pixels = max(budget, 0) / bytes_per_pixel(model, element_bytes, batch)
    fits = height * width <= max_pixels
    side = int(math.sqrt(max_pixels)) // TILE_STEP * TILE_STEP
    if device.type == "cpu":
        cache_side = max(CPU_TILE, 4 * model.tile_overlap)
        fits = fits and max(height, width) <= cache_side
        side = min(side, cache_side)
    if fits:
        return None
    return max(side, MIN_TILE, 2 * model.tile_overlap + TILE_STEP)


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    message = str(err).lower()
    return isinstance(err, RuntimeError) and (
        "out of memory" in message or "can't allocate memory" in message
    )


# --------------------------------------------------------------------------- running


@dataclass
class _Run:
    """Mutable state of one execution: where, how precise, how big the tiles."""

    model: LoadedModel
    device: torch.device
    extras: Extras
    autocast: torch.dtype | None
    batch_channels: bool


def run_model(
    model: LoadedModel,
    pixels: FloatArray,
    ctx: RunContext,
    extras: Extras | None = None,
    message: str = "Running model",
) -> Generator[Progress, None, FloatArray]:
    """Run `model` on (H, W, C) `pixels`; returns (H*s, W*s, C') float32 in [0, 1], where s is
    the model's scale (1 but for super-resolution)."""
    height, width, channels = pixels.shape
    device = next(model.module.parameters(), torch.empty(0)).device
    run = _Run(
        model=model,
        device=device,
        extras=extras or Extras(),
        autocast=_half_dtype(model, device),
        batch_channels=model.in_channels == 1 and channels == 3 and model.out_channels == 1,
    )
    tile = _initial_tile(run, height, width, ctx)
    while True:
        try:
            return (yield from _run_once(run, pixels, tile, message))
        except Exception as err:
            if not is_out_of_memory(err):
                raise
            _free_memory()
            tile = _after_out_of_memory(run, tile, height, width, ctx)


def _initial_tile(run: _Run, height: int, width: int, ctx: RunContext) -> int | None:
    if run.model.tiling != "supported":
        return None
    if ctx.tile:
        return ctx.tile if ctx.tile < max(height, width) else None
    element = 2 if run.autocast is not None else 4
    return auto_tile(run.model, height, width, run.device, element, 3 if run.batch_channels else 1)


def _after_out_of_memory(
    run: _Run, tile: int | None, height: int, width: int, ctx: RunContext
) -> int | None:
    side = tile or max(height, width)
    if run.model.tiling == "supported" and side // 2 >= MIN_TILE:
        ctx.log(f"Out of memory with {side}px tiles: retrying with {side // 2}px tiles")
        return side // 2
    if run.device.type != "cpu":
        ctx.log(
            "Out of GPU memory even with the smallest tiles: running on the CPU instead (slower)"
        )
        run.device = torch.device("cpu")
        run.autocast = None
        run.model.module.to(run.device)
        _free_memory()
        return _initial_tile(run, height, width, ctx)
    raise OutOfMemoryError(
        f"Not enough memory to run {run.model.architecture} on a {width}x{height} image, "
        "even with the smallest tiles"
    )


def _half_dtype(model: LoadedModel, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    if model.supports_half:
        return torch.float16
    if model.supports_bfloat16 and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def _run_once(
    run: _Run, pixels: FloatArray, tile: int | None, message: str
) -> Generator[Progress, None, FloatArray]:
    out_channels = _output_channels(run.model, pixels.shape[2])

    def on_window(window: FloatArray, y0: int, x0: int) -> FloatArray:
        return _infer(run, window, (y0, x0))

    if tile is None:
        yield Progress(0, 1, message)
        out = on_window(pixels, 0, 0)
        yield Progress(1, 1, message)
        return out
    overlap = min(run.model.tile_overlap, tile // 4)  # a small tile asked for keeps tiling valid
    return (
        yield from _tiled(pixels, on_window, tile, overlap, out_channels, message, run.model.scale)
    )


def _tiled(
    pixels: FloatArray,
    on_window: WindowFn,
    tile: int,
    overlap: int,
    out_channels: int,
    message: str,
    scale: int,
) -> Generator[Progress, None, FloatArray]:
    """run_tiled, telling the tile function where each tile sits (for spatial extras).

    run_tiled calls its function once per window of `tile_grid`, in order.
    """
    grid = iter(tile_grid(pixels.shape[0], pixels.shape[1], tile, overlap))

    def fn(window: FloatArray) -> FloatArray:
        t = next(grid)
        result: FloatArray = on_window(window, t.y0, t.x0)
        return result

    return (yield from run_tiled(pixels, fn, tile, overlap, out_channels, message, scale))


def _keeps_channels(model: LoadedModel) -> bool:
    """Restoration keeps a grey photo grey; colorize and style models make it RGB."""
    return model.out_channels == model.in_channels and model.task not in ("colorize", "style")


def _output_channels(model: LoadedModel, image_channels: int) -> int:
    return image_channels if _keeps_channels(model) else model.out_channels


@torch.inference_mode()
def _infer(run: _Run, window: FloatArray, origin: tuple[int, int]) -> FloatArray:
    """One window (h, w, C) through the model; (h, w, C') float32 out."""
    model = run.model
    h, w, channels = window.shape
    x = torch.from_numpy(np.ascontiguousarray(window)).to(run.device).permute(2, 0, 1).unsqueeze(0)
    x = _to_model_channels(x, model, run.batch_channels)
    x, pad = _pad(x, model)
    cond = _conditioning(run, origin, (h, w), pad)
    y = _forward(run, x, cond)
    y = y[..., : h * model.scale, : w * model.scale]
    y = _from_model_channels(y, model, channels, run.batch_channels)
    result: FloatArray = (
        y.clamp_(0.0, 1.0).squeeze(0).permute(1, 2, 0).to("cpu", torch.float32).numpy()
    )
    return result


def _forward(run: _Run, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    if run.autocast is not None:
        with torch.autocast(device_type=run.device.type, dtype=run.autocast):
            y = run.model.forward(run.model.module, x, cond).float()
        if torch.isfinite(y).all():
            return y
        run.autocast = None  # this model overflows in half precision: stay in float32
    return run.model.forward(run.model.module, x, cond).float()


def _to_model_channels(x: torch.Tensor, model: LoadedModel, batch_channels: bool) -> torch.Tensor:
    channels = x.shape[1]
    if channels == model.in_channels:
        return x
    if batch_channels:
        return x.permute(1, 0, 2, 3)  # RGB as a batch of three grey images
    if model.in_channels == 1:
        weights = torch.tensor([0.2126, 0.7152, 0.0722], device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    return x.expand(-1, model.in_channels, -1, -1)


def _from_model_channels(
    y: torch.Tensor, model: LoadedModel, channels: int, batch_channels: bool
) -> torch.Tensor:
    if batch_channels:
        return y.permute(1, 0, 2, 3)
    if _keeps_channels(model) and y.shape[1] != channels:
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
    run: _Run, origin: tuple[int, int], size: tuple[int, int], pad: tuple[int, int]
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
        sigma=extras.sigma,
        mask=spatial(extras.mask),
        hints=spatial(extras.hints),
        style=style,
        alpha=extras.alpha,
    )
