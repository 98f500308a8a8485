"""The tiled executor every heavy engine uses: run a function per tile, blend the seams."""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

from studio.core.image import FloatArray
from studio.core.protocol import Progress
from studio.core.tiling import Tile, feather_weight, tile_grid

TileFn = Callable[[FloatArray], FloatArray]


def run_tiled(
    pixels: FloatArray,
    fn: TileFn,
    tile: int,
    overlap: int = 32,
    out_channels: int | None = None,
    message: str = "Processing",
    scale: int = 1,
) -> Generator[Progress, None, FloatArray]:
    """Apply `fn` to overlapping tiles of (H, W, C) `pixels` and blend them back.

    `fn` maps an (h, w, C) tile to an (h * scale, w * scale, out_channels) tile. Yields
    Progress per tile. Memory beyond the input is one output image and one weight plane.
    A `tile` too small for the `overlap` is raised to four overlaps.
    """
    height, width, channels = pixels.shape
    tiles = tile_grid(height, width, max(tile, 4 * overlap), overlap)
    if len(tiles) == 1:
        yield Progress(0, 1, message)
        out = np.asarray(fn(pixels), dtype=np.float32)
        yield Progress(1, 1, message)
        return out
    out_c = out_channels or channels
    out = np.zeros((height * scale, width * scale, out_c), dtype=np.float32)
    weights = np.zeros((height * scale, width * scale, 1), dtype=np.float32)
    for index, t in enumerate(tiles):
        yield Progress(index, len(tiles), f"{message}: tile {index + 1}/{len(tiles)}")
        result = fn(pixels[t.y0 : t.y1, t.x0 : t.x1])
        big = Tile(t.y0 * scale, t.y1 * scale, t.x0 * scale, t.x1 * scale)
        w = feather_weight(big, height * scale, width * scale, overlap * scale)[..., None]
        out[big.y0 : big.y1, big.x0 : big.x1] += result * w
        weights[big.y0 : big.y1, big.x0 : big.x1] += w
    yield Progress(len(tiles), len(tiles), message)
    out /= weights
    return out
