"""The one executor for every neural model: device, precision, tiling, memory.

`run_model` runs a model over an image, tiled with overlap when the image or the free memory
demands it. On out-of-memory it unloads the other cached models (first time), halves the
tile (a model that discourages tiling is tiled with a large overlap after its whole-image
try fails), then falls back to the CPU. An unrecoverable GPU error sets the GPU aside for
the session. The input array is read tile by tile and results are blended into one output
array, so host memory stays near one input plus one output image. `inference` runs each
window (range, channels, padding, precision).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import TypeVar

import torch

from studio.core.errors import DeviceError, ModelError, OutOfMemoryError
from studio.core.image import FloatArray
from studio.core.protocol import Progress, RunContext
from studio.core.tiling import Tile
from studio.engine.device import resolve_device, set_gpu_aside
from studio.engine.memory import (
    first_line,
    free_bytes,
    is_out_of_memory,
    is_unrecoverable_gpu_error,
    release_memory,
)
from studio.engine.neural import precision
from studio.engine.neural.inference import Extras as Extras
from studio.engine.neural.inference import (
    ValueRange,
    WindowRun,
    infer,
    infer_on_device,
    keeps_channels,
)
from studio.engine.neural.loader import load_model
from studio.engine.neural.model import LoadedModel
from studio.engine.neural.pipeline import run_tiles, run_tiles_into
from studio.engine.tiling import RowSink

CACHE_KEY = "neural.models"
MAX_CACHED_MODELS = 2
MIN_TILE = 64
TILE_STEP = 32
GPU_BUDGET = 0.8
CPU_BUDGET = 0.5
ACTIVATION_FACTOR = 8  # live activations per pixel, in units of the widest layer
CPU_TILE = 256  # cache-sized CPU tiles run 1.4-3x faster than whole images (neural --tile-sweep)
STREAM_TILE = 1024  # the largest tile of a streamed result: its band stays small beside it

_T = TypeVar("_T")


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
            release_memory()
    cache.move_to_end(key)
    model.module.to(device)
    return model


def _unload_others(ctx: RunContext, model: LoadedModel) -> int:
    """Drop every cached model but `model`; how many were dropped."""
    cache: OrderedDict[tuple[object, ...], LoadedModel] = ctx.cache.get(CACHE_KEY, OrderedDict())
    others = [key for key, cached in cache.items() if cached is not model]
    for key in others:
        del cache[key]
    return len(others)


# --------------------------------------------------------------------------- memory


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
    budget = max(share * free_bytes(device) - model.parameter_bytes, 0)
    per_pixel = bytes_per_pixel(model, element_bytes, batch)
    fits = height * width <= budget / per_pixel
    side = _tile_side(budget, per_pixel, _band_bytes_per_tile_row(model, width, batch, device))
    if device.type == "cpu":
        cache_side = max(CPU_TILE, 4 * model.tile_overlap)
        fits = fits and max(height, width) <= cache_side
        side = min(side, cache_side)
    if fits:
        return None
    return max(side, MIN_TILE, 2 * model.tile_overlap + TILE_STEP)


def _band_bytes_per_tile_row(
    model: LoadedModel, width: int, batch: int, device: torch.device
) -> int:
    """Device memory of the blend band (and its finished rows) per row of a tile: none on
    the CPU, where the band is host memory like the output image."""
    if device.type == "cpu":
        return 0
    return 2 * 4 * model.scale**2 * width * model.out_channels * batch


def _tile_side(budget: float, per_pixel: int, per_row: int) -> int:
    """The largest side s, a multiple of TILE_STEP, with per_pixel * s² + per_row * s within
    the budget."""
    side = (math.sqrt(per_row**2 + 4 * per_pixel * budget) - per_row) / (2 * per_pixel)
    return int(side) // TILE_STEP * TILE_STEP


# --------------------------------------------------------------------------- running


def run_model(
    model: LoadedModel,
    pixels: FloatArray,
    ctx: RunContext,
    extras: Extras | None = None,
    message: str = "Running model",
    output_bits: int = 32,
) -> Generator[Progress, None, FloatArray]:
    """Run `model` on (H, W, C) `pixels`; returns (H*s, W*s, C') float32 in [0, 1], where s is
    the model's scale (1 but for super-resolution), or for a float photo (`output_bits` 32)
    in the photo's own range. `output_bits` (8, 16 or 32, the depth the result will be saved
    at) also decides whether half precision is good enough."""
    run = _window_run(model, pixels, ctx, extras, output_bits)
    return (
        yield from _with_retries(run, pixels.shape, ctx, partial(_run_once, run, pixels, message))
    )


def run_model_into(
    model: LoadedModel,
    pixels: FloatArray,
    ctx: RunContext,
    sink: RowSink,
    message: str = "Running model",
    output_bits: int = 32,
) -> Generator[Progress, None, None]:
    """`run_model` handing its result to `sink(top, rows)` a band of finished rows at a time
    (for results too big to hold in float32: super-resolution), always tiled on big photos."""
    run = _window_run(model, pixels, ctx, None, output_bits)
    attempt = partial(_run_once_into, run, pixels, sink, message)
    yield from _with_retries(run, pixels.shape, ctx, attempt)


def _window_run(
    model: LoadedModel,
    pixels: FloatArray,
    ctx: RunContext,
    extras: Extras | None,
    output_bits: int,
) -> WindowRun:
    device = next(model.module.parameters(), torch.empty(0)).device
    autocast, measure = precision.choose(model, device, ctx.precision, output_bits)
    return WindowRun(
        model=model,
        device=device,
        extras=extras or Extras(),
        ctx=ctx,
        autocast=autocast,
        measure_agreement=measure,
        allow_tf32=output_bits == 8,
        batch_channels=model.in_channels == 1 and pixels.shape[2] == 3 and model.out_channels == 1,
        value_range=ValueRange.of(pixels) if output_bits == 32 else ValueRange(),
    )


def _with_retries(
    run: WindowRun,
    shape: tuple[int, ...],
    ctx: RunContext,
    attempt: Callable[[int | None], Generator[Progress, None, _T]],
) -> Generator[Progress, None, _T]:
    """`attempt(tile)` until it fits: on out-of-memory, unload the other cached models, then
    halve the tile, then move to the CPU."""
    height, width = shape[:2]
    tile = _initial_tile(run, height, width, ctx)
    unloaded = False
    while True:
        try:
            return (yield from attempt(tile))
        except Exception as err:
            if _on_gpu(run) and is_unrecoverable_gpu_error(err):
                raise _gpu_failed(ctx, err) from err
            if not is_out_of_memory(err):
                raise
        release_memory()  # outside the except block, whose traceback holds the failed tile
        if not unloaded and (count := _unload_others(ctx, run.model)):
            ctx.log(f"Out of memory: unloaded {count} other cached model(s) to make room")
            release_memory()
        unloaded = True
        tile = _after_out_of_memory(run, tile, height, width, ctx)


def _on_gpu(run: WindowRun) -> bool:
    return run.device.type == "cuda"


def _gpu_failed(ctx: RunContext, err: BaseException) -> DeviceError:
    reason = first_line(err)
    set_gpu_aside(f"it failed with '{reason}'")
    ctx.cache.pop(CACHE_KEY, None)
    return DeviceError(
        f"The GPU failed ({reason}). Studio now runs on the CPU; restart Studio to use the "
        "GPU again."
    )


def _tiles_after_failure(model: LoadedModel) -> bool:
    """Models that discourage tiling get tiles only when the whole image does not fit;
    inpainting never does (it needs the context around the hole)."""
    return model.tiling == "discouraged" and "mask" not in model.extras


def _initial_tile(run: WindowRun, height: int, width: int, ctx: RunContext) -> int | None:
    if run.model.tiling != "supported":
        return None
    if ctx.tile:
        return ctx.tile if ctx.tile < max(height, width) else None
    element = 2 if run.autocast is not None else 4
    return auto_tile(run.model, height, width, run.device, element, 3 if run.batch_channels else 1)


def _after_out_of_memory(
    run: WindowRun, tile: int | None, height: int, width: int, ctx: RunContext
) -> int | None:
    side = tile or max(height, width)
    tileable = run.model.tiling == "supported" or _tiles_after_failure(run.model)
    if tileable and side // 2 >= MIN_TILE:
        ctx.log(f"Out of memory with {side}px tiles: retrying with {side // 2}px tiles")
        return side // 2
    if run.device.type != "cpu":
        ctx.log(
            "Out of GPU memory even with the smallest tiles: running on the CPU instead (slower)"
        )
        run.device = torch.device("cpu")
        run.autocast = None
        run.model.module.to(run.device)
        release_memory()
        return _initial_tile(run, height, width, ctx)
    raise OutOfMemoryError(
        f"Not enough memory to run {run.model.architecture} on a {width}x{height} image, "
        "even with the smallest tiles"
    )


def _overlap(model: LoadedModel, tile: int) -> int:
    """The model's overlap; a quarter of the tile for models that discourage tiling (their
    attention windows or global context reach far); never so much that tiling is invalid."""
    if model.tiling != "supported":
        return tile // 4
    return min(model.tile_overlap, tile // 4)


def _run_once(
    run: WindowRun, pixels: FloatArray, message: str, tile: int | None
) -> Generator[Progress, None, FloatArray]:
    if tile is None:
        yield Progress(0, 1, message)
        out = infer(run, pixels, (0, 0))
        yield Progress(1, 1, message)
        return out

    channels = _output_channels(run.model, pixels.shape[2])
    return (
        yield from run_tiles(pixels, partial(_on_tile, run), run.device, tile,
                             _overlap(run.model, tile), channels, message, run.model.scale)
    )  # fmt: skip


def _run_once_into(
    run: WindowRun, pixels: FloatArray, sink: RowSink, message: str, tile: int | None
) -> Generator[Progress, None, None]:
    height, width = pixels.shape[:2]
    if tile is None and run.model.tiling == "supported" and max(height, width) > STREAM_TILE:
        tile = STREAM_TILE  # a whole-image result would be one float32 array
    if tile is None:
        yield Progress(0, 1, message)
        sink(0, infer(run, pixels, (0, 0)))
        yield Progress(1, 1, message)
        return

    channels = _output_channels(run.model, pixels.shape[2])
    yield from run_tiles_into(pixels, partial(_on_tile, run), run.device, sink, tile,
                              _overlap(run.model, tile), channels, message,
                              run.model.scale)  # fmt: skip


def _on_tile(run: WindowRun, window: torch.Tensor, at: Tile) -> torch.Tensor:
    """One tile, on the run's device, through the model (`at` places spatial extras)."""
    return infer_on_device(run, window, (at.y0, at.x0))


def _output_channels(model: LoadedModel, image_channels: int) -> int:
    return image_channels if keeps_channels(model) else model.out_channels
