"""The tiled executor every heavy engine uses: run a function per tile, blend the seams.

`run_tiled_on_device` adds what torch engines need on a GPU: tiles sized from free memory,
halving on out-of-memory and falling back to the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import numpy as np

from studio.core.errors import OutOfMemoryError
from studio.core.image import FloatArray
from studio.core.protocol import Progress, RunContext
from studio.core.tiling import Tile, feather_ramps, tile_grid
from studio.engine.memory import free_bytes, is_out_of_memory, release_memory

if TYPE_CHECKING:
    import torch

TileFn = Callable[[FloatArray], FloatArray]
TileAtFn = Callable[[FloatArray, Tile], FloatArray]
RowSink = Callable[[int, FloatArray], None]  # (first row, finished rows (n, W, C) float32)
_NORMALISE_ROWS = 256  # rows of the tiles' weight sum made at a time when dividing by it


def run_tiled(
    pixels: FloatArray,
    fn: TileFn,
    tile: int,
    overlap: int,
    out_channels: int | None = None,
    message: str = "Processing",
    scale: int = 1,
) -> Generator[Progress, None, FloatArray]:
    """Apply `fn` to overlapping tiles of (H, W, C) `pixels` and blend them back.

    `fn` maps an (h, w, C) tile to an (h * scale, w * scale, out_channels) tile. Yields
    Progress per tile. `overlap` is the engine's own: at least four times its operator's reach
    for the blend to reproduce the untiled result. Memory beyond the input is the output image:
    the tiles' weights are outer products of row and column ramps over a grid of rows and
    columns of tiles, so their sum is kept as one row and one column. A `tile` too small for
    the `overlap` is raised to four overlaps.
    """
    return (
        yield from run_tiled_at(
            pixels, lambda window, at: fn(window), tile, overlap, out_channels, message, scale
        )
    )


def run_tiled_at(
    pixels: FloatArray,
    fn: TileAtFn,
    tile: int,
    overlap: int,
    out_channels: int | None = None,
    message: str = "Processing",
    scale: int = 1,
) -> Generator[Progress, None, FloatArray]:
    """`run_tiled` whose `fn` also gets the `Tile` (the region of `pixels`) it works on."""
    height, width, channels = pixels.shape
    if len(tile_grid(height, width, max(tile, 4 * overlap), overlap)) == 1:
        yield Progress(0, 1, message)
        whole = np.asarray(fn(pixels, Tile(0, height, 0, width)), dtype=np.float32)
        yield Progress(1, 1, message)
        return whole
    out = np.empty((height * scale, width * scale, out_channels or channels), dtype=np.float32)

    def into_out(top: int, rows: FloatArray) -> None:
        out[top : top + len(rows)] = rows

    yield from run_tiled_into(pixels, fn, into_out, tile, overlap, message, scale)
    return out


def run_tiled_into(
    pixels: FloatArray,
    fn: TileAtFn,
    sink: RowSink,
    tile: int,
    overlap: int,
    message: str = "Processing",
    scale: int = 1,
) -> Generator[Progress, None, None]:
    """`run_tiled_at` handing its result to `sink(top, rows)` a band of finished rows at a time,
    top to bottom, instead of returning it: memory beyond the input is one row of tiles of the
    result (the tiles are blended in a band as tall as a tile, flushed as rows become final)."""
    height, width, _ = pixels.shape
    tiles = tile_grid(height, width, max(tile, 4 * overlap), overlap)
    big_height, big_width = height * scale, width * scale
    row_sums = np.zeros(big_height, dtype=np.float32)
    column_sums = np.zeros(big_width, dtype=np.float32)
    band: FloatArray | None = None
    band_top = 0
    for index, t in enumerate(tiles):
        yield Progress(index, len(tiles), f"{message}: tile {index + 1}/{len(tiles)}")
        result = fn(pixels[t.y0 : t.y1, t.x0 : t.x1], t)
        big = Tile(t.y0 * scale, t.y1 * scale, t.x0 * scale, t.x1 * scale)
        if band is None or big.y0 != band_top:  # a new row of tiles: rows above it are final
            if band is not None:
                _flush(band[: big.y0 - band_top], band_top, row_sums, column_sums, sink)
            band = _new_band(band, band_top, big, big_width, result.shape[2])
            band_top = big.y0
        rows, columns = feather_ramps(big, big_height, big_width, overlap * scale)
        weighted = result * np.outer(rows, columns)[..., None]
        band[: big.y1 - big.y0, big.x0 : big.x1] += weighted
        if t.x0 == 0:  # once per row of tiles
            row_sums[big.y0 : big.y1] += rows
        if t.y0 == 0:  # once per column of tiles
            column_sums[big.x0 : big.x1] += columns
    yield Progress(len(tiles), len(tiles), message)
    if band is not None:
        _flush(band, band_top, row_sums, column_sums, sink)


def _new_band(
    previous: FloatArray | None, previous_top: int, tile: Tile, width: int, channels: int
) -> FloatArray:
    """A zeroed band for the row of tiles starting at `tile`, holding what the previous band
    had already summed below that row's top (the overlap)."""
    band = np.zeros((tile.y1 - tile.y0, width, channels), dtype=np.float32)
    if previous is not None:
        kept = previous[tile.y0 - previous_top :]
        band[: len(kept)] = kept
    return band


def _flush(
    rows: FloatArray, top: int, row_sums: FloatArray, column_sums: FloatArray, sink: RowSink
) -> None:
    """Divide finished `rows` (starting at row `top`) by their blend weights; give them to sink."""
    for y0 in range(0, len(rows), _NORMALISE_ROWS):
        part = rows[y0 : y0 + _NORMALISE_ROWS]
        weights = row_sums[top + y0 : top + y0 + len(part), None] * column_sums[None, :]
        part /= weights[..., None]
        sink(top + y0, part)


DeviceTileFn = Callable[[FloatArray, "torch.device"], FloatArray]
GPU_SHARE = 0.6  # of the free GPU memory a tile may use; the rest absorbs fragmentation
TILE_STEP = 32


class BlockMeans:
    """A `RowSink` that hands `sink` its rows reduced `factor` times by averaging factor x
    factor blocks (area reduction by an integer factor), rows held until a block is whole."""

    def __init__(self, sink: RowSink, factor: int) -> None:
        self.sink, self.factor = sink, factor
        self._held: FloatArray | None = None

    def __call__(self, top: int, rows: FloatArray) -> None:
        if self._held is not None:
            top, rows = top - len(self._held), np.concatenate([self._held, rows])
        whole = len(rows) // self.factor * self.factor
        self._held = rows[whole:].copy() if whole < len(rows) else None
        if whole:
            k = self.factor
            blocks = rows[:whole].reshape(whole // k, k, rows.shape[1] // k, k, rows.shape[2])
            self.sink(top // k, blocks.mean(axis=(1, 3), dtype=np.float32))


def tile_for_memory(
    device: torch.device, bytes_per_pixel: int, cpu_tile: int, minimum: int = 64
) -> int:
    """A tile side whose working memory fits the device: `cpu_tile` (cache-sized) on the CPU,
    as large as `GPU_SHARE` of the free memory allows on a GPU."""
    if device.type == "cpu":
        return cpu_tile
    pixels = GPU_SHARE * free_bytes(device) / bytes_per_pixel
    return max(minimum, int(math.sqrt(pixels)) // TILE_STEP * TILE_STEP)


def run_tiled_on_device(
    pixels: FloatArray,
    fn: DeviceTileFn,
    device: torch.device,
    ctx: RunContext,
    *,
    bytes_per_pixel: int,
    cpu_tile: int,
    overlap: int,
    message: str = "Processing",
    out_channels: int | None = None,
) -> Generator[Progress, None, FloatArray]:
    """`run_tiled` for a torch engine: tiles sized from the device's free memory (or
    `ctx.tile`); on out-of-memory the tile is halved, and below the smallest tile the job
    moves to the CPU, like the neural executor. `fn(tile, device)` processes one tile."""
    minimum = max(64, 2 * overlap + TILE_STEP)
    tile = ctx.tile or tile_for_memory(device, bytes_per_pixel, cpu_tile, minimum)
    while True:
        try:
            on_device = _bound(fn, device)
            return (yield from run_tiled(pixels, on_device, tile, overlap, out_channels, message))
        except Exception as err:
            if not is_out_of_memory(err):
                raise
        release_memory()  # outside the except block, whose traceback holds the failed tile
        if tile // 2 >= minimum:
            ctx.log(f"Out of memory with {tile}px tiles: retrying with {tile // 2}px tiles")
            tile //= 2
        elif device.type != "cpu":
            ctx.log("Out of GPU memory even with the smallest tiles: running on the CPU instead")
            device = torch_device("cpu")
            tile = tile_for_memory(device, bytes_per_pixel, cpu_tile, minimum)
        else:
            raise OutOfMemoryError(
                f"Not enough memory for {message.lower()} even with {tile}px tiles"
            )


def _bound(fn: DeviceTileFn, device: torch.device) -> TileFn:
    return lambda tile: fn(tile, device)


def torch_device(name: str) -> torch.device:
    import torch

    return torch.device(name)


def on_device_or_cpu(
    start: Callable[[torch.device], Generator[Progress, None, FloatArray]],
    device: torch.device,
    ctx: RunContext,
) -> Generator[Progress, None, FloatArray]:
    """Run `start(device)`; when a GPU runs out of memory, run it again on the CPU (for
    engines that work on the whole image and cannot tile)."""
    try:
        return (yield from start(device))
    except Exception as err:
        if device.type == "cpu" or not is_out_of_memory(err):
            raise
    release_memory()
    ctx.log("Out of GPU memory: running on the CPU instead (slower)")
    return (yield from start(torch_device("cpu")))
