"""Tiles through a model on its device, without the device idling between tiles.

The next tile's pixels are copied while the current tile runs: on a GPU from pinned host
memory (two buffers, used in turn), on a side stream, `non_blocking`. Results are blended on
the device in a band one row of tiles high; when a row of tiles is done, its finished rows
(those no later tile touches) are divided by the blend weights and copied back, again
`non_blocking` into pinned memory, and reach the host image (or a sink such as a 16-bit
store) while the next row runs. Host memory stays one input plus the output (plus two
pinned tiles and one pinned band); the device holds one band besides the model's tile.
The blend is `run_tiled`'s arithmetic, in the same order, so the results are the same to
the bit on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import torch

from studio.core.image import FloatArray
from studio.core.protocol import Progress
from studio.core.tiling import Tile, feather_ramps, tile_grid
from studio.engine.tiling import RowSink

DeviceTileFn = Callable[[torch.Tensor, Tile], torch.Tensor]
HostRows = Callable[[], FloatArray]  # waits for a copy to the host, then gives its rows


@dataclass
class Upload:
    """A tile's pixels on the device, usable once `copied` (None: already) has happened."""

    tensor: torch.Tensor
    copied: torch.cuda.Event | None = None


class PlainTransfers:
    """Ordinary copies, for the CPU (where they cost nothing) or a device without streams."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def reserve(self, tile_numel: int, band_numel: int) -> None:
        """Make room for the largest tile and band copies (nothing to do here)."""

    def upload(self, window: FloatArray) -> Upload:
        return Upload(torch.from_numpy(np.ascontiguousarray(window)).to(self.device))

    def ready(self, upload: Upload) -> torch.Tensor:
        return upload.tensor

    def download(self, rows: torch.Tensor) -> HostRows:
        host = rows.to("cpu")
        return host.numpy


def pinned_empty(numel: int) -> torch.Tensor:
    """Page-locked host memory, which the GPU copies from and to without the host waiting."""
    return torch.empty(numel, dtype=torch.float32, pin_memory=True)


class _Pinned:
    """A pinned host buffer, grown on demand, and the event of the last copy that used it."""

    def __init__(self) -> None:
        self.memory = torch.empty(0)
        self.used: torch.cuda.Event | None = None

    def reserve(self, numel: int) -> None:
        if self.memory.numel() < numel:
            self.memory = pinned_empty(numel)

    def view(self, shape: tuple[int, ...]) -> torch.Tensor:
        if self.used is not None:
            self.used.synchronize()  # the previous copy from or to it is over
        numel = int(np.prod(shape))
        self.reserve(numel)
        return self.memory[:numel].view(shape)


class CudaTransfers(PlainTransfers):
    """Copies that overlap the computation: host to device on a side stream from one of two
    pinned tile buffers; device to host on the compute stream into a pinned band buffer."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(device)
        self.side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        self.tiles = (_Pinned(), _Pinned())
        self.turn = 0
        self.band = _Pinned()

    def reserve(self, tile_numel: int, band_numel: int) -> None:
        for pinned in self.tiles:
            pinned.reserve(tile_numel)
        self.band.reserve(band_numel)

    def upload(self, window: FloatArray) -> Upload:
        pinned = self.tiles[self.turn]
        self.turn = 1 - self.turn
        staged = pinned.view(window.shape)
        staged.numpy()[...] = window
        with torch.cuda.stream(self.side):
            tensor = staged.to(self.device, non_blocking=True)
            pinned.used = torch.cuda.Event()  # type: ignore[no-untyped-call]
            pinned.used.record(self.side)
        return Upload(tensor, pinned.used)

    def ready(self, upload: Upload) -> torch.Tensor:
        compute = torch.cuda.current_stream(self.device)
        if upload.copied is not None:
            compute.wait_event(upload.copied)
        upload.tensor.record_stream(compute)  # made on the side stream, used on this one
        return upload.tensor

    def download(self, rows: torch.Tensor) -> HostRows:
        host = self.band.view(tuple(rows.shape))
        host.copy_(rows, non_blocking=True)
        done = torch.cuda.Event()  # type: ignore[no-untyped-call]
        done.record(torch.cuda.current_stream(self.device))
        self.band.used = done

        def rows_on_host() -> FloatArray:
            done.synchronize()
            result: FloatArray = host.numpy()
            return result

        return rows_on_host


def transfers_for(device: torch.device) -> PlainTransfers:
    return CudaTransfers(device) if device.type == "cuda" else PlainTransfers(device)


class _BlendBand:
    """The output rows of one row of tiles, blended on the device; `run_tiled`'s weights."""

    def __init__(self, tiles: list[Tile], size: tuple[int, int], overlap: int, scale: int,
                 channels: int, device: torch.device) -> None:  # fmt: skip
        height, width = size[0] * scale, size[1] * scale
        row_sums = np.zeros(height, dtype=np.float32)
        column_sums = np.zeros(width, dtype=np.float32)
        self.row_ramps: dict[int, torch.Tensor] = {}  # by the tile's first row
        self.column_ramps: dict[int, torch.Tensor] = {}  # by its first column
        for t in tiles:  # uploaded once: a copy from pageable memory waits for the device
            big = Tile(t.y0 * scale, t.y1 * scale, t.x0 * scale, t.x1 * scale)
            rows, columns = feather_ramps(big, height, width, overlap * scale)
            if t.x0 == 0:
                row_sums[big.y0 : big.y1] += rows
                self.row_ramps[t.y0] = torch.from_numpy(rows).to(device)
            if t.y0 == 0:
                column_sums[big.x0 : big.x1] += columns
                self.column_ramps[t.x0] = torch.from_numpy(columns).to(device)
        self.row_sums = torch.from_numpy(row_sums).to(device)
        self.column_sums = torch.from_numpy(column_sums).to(device)
        self.tops = [*sorted({t.y0 * scale for t in tiles}), height]
        band_rows = max(t.y1 - t.y0 for t in tiles) * scale
        self.rows = torch.zeros((band_rows, width, channels), dtype=torch.float32, device=device)
        self.top = 0
        self.scale, self.width = scale, size[1]

    def add(self, t: Tile, result: torch.Tensor) -> tuple[int, torch.Tensor] | None:
        """Blend one tile's result in; after the last tile of a row of tiles, the rows now
        finished as (first row, rows divided by their weights), and the band moves down."""
        s = self.scale
        rows, columns = self.row_ramps[t.y0], self.column_ramps[t.x0]
        y0, y1 = t.y0 * s - self.top, t.y1 * s - self.top
        weight = (rows[:, None] * columns[None, :])[..., None]
        self.rows[y0:y1, t.x0 * s : t.x1 * s] += result * weight
        if t.x1 < self.width:
            return None
        top = self.top
        next_top = self.tops[self.tops.index(top) + 1]
        done = next_top - top
        weights = self.row_sums[top:next_top, None] * self.column_sums[None, :]
        finished = self.rows[:done] / weights[..., None]
        carried = self.rows[done:].clone()
        self.rows.zero_()
        self.rows[: carried.shape[0]] = carried
        self.top = next_top
        return top, finished


def run_tiles(
    pixels: FloatArray,
    fn: DeviceTileFn,
    device: torch.device,
    tile: int,
    overlap: int,
    out_channels: int,
    message: str,
    scale: int = 1,
) -> Generator[Progress, None, FloatArray]:
    """`run_tiled_at` with `fn` mapping an (h, w, C) tile on `device` to its (h * scale,
    w * scale, out_channels) result there; the next tile is copied while `fn` runs."""
    height, width, _ = pixels.shape
    out = np.empty((height * scale, width * scale, out_channels), dtype=np.float32)

    def into_out(top: int, rows: FloatArray) -> None:
        out[top : top + len(rows)] = rows

    yield from run_tiles_into(
        pixels, fn, device, into_out, tile, overlap, out_channels, message, scale
    )
    return out


def run_tiles_into(
    pixels: FloatArray,
    fn: DeviceTileFn,
    device: torch.device,
    sink: RowSink,
    tile: int,
    overlap: int,
    out_channels: int,
    message: str,
    scale: int = 1,
) -> Generator[Progress, None, None]:
    """`run_tiles` handing finished rows to `sink(top, rows)`, top to bottom, as
    `run_tiled_into` does; `rows` is valid only during the call (its memory is reused)."""
    height, width, _ = pixels.shape
    tiles = tile_grid(height, width, max(tile, 4 * overlap), overlap)
    transfers = transfers_for(device)
    band = _BlendBand(tiles, (height, width), overlap, scale, out_channels, device)
    first = tiles[0]
    transfers.reserve((first.y1 - first.y0) * (first.x1 - first.x0) * pixels.shape[2],
                      band.rows.numel())  # fmt: skip
    pending: tuple[int, HostRows] | None = None
    upload = transfers.upload(_window(pixels, tiles[0]))
    for index, t in enumerate(tiles):
        yield Progress(index, len(tiles), f"{message}: tile {index + 1}/{len(tiles)}")
        current = upload
        if index + 1 < len(tiles):
            upload = transfers.upload(_window(pixels, tiles[index + 1]))
        finished = band.add(t, fn(transfers.ready(current), t))
        del current
        if finished is not None:
            _land(sink, pending)
            first_row, rows = finished
            pending = (first_row, transfers.download(rows))
    _land(sink, pending)
    yield Progress(len(tiles), len(tiles), message)


def _window(pixels: FloatArray, t: Tile) -> FloatArray:
    return pixels[t.y0 : t.y1, t.x0 : t.x1]


def _land(sink: RowSink, pending: tuple[int, HostRows] | None) -> None:
    if pending is not None:
        first_row, rows_on_host = pending
        sink(first_row, rows_on_host())
