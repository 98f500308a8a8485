"""Tiling maths: overlapping tile windows and the feathered weights that hide seams."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studio.core.image import FloatArray


@dataclass(frozen=True)
class Tile:
    """A window [y0, y1) x [x0, x1) of the image, overlap included."""

    y0: int
    y1: int
    x0: int
    x1: int


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) windows along one axis: as few as `tile` allows, all of one size, so the
    last window does not sit almost on top of its neighbour (wasted work)."""
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length - overlap) / count) + overlap
    starts = [i * (size - overlap) for i in range(count - 1)] + [length - size]
    return [(start, start + size) for start in starts]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Windows of at most `tile` pixels a side covering the image, neighbours sharing at least
    `overlap`."""
    if tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must exceed twice the overlap ({overlap})")
    return [
        Tile(y0, y1, x0, x1)
        for y0, y1 in _spans(height, tile, overlap)
        for x0, x1 in _spans(width, tile, overlap)
    ]


def _edge(overlap: int) -> FloatArray:
    """Weights across an overlap, outer end first: 0 over the outer quarter, where a tile's
    result feels the tile border, then a linear rise to 1 over the middle half."""
    margin = overlap // 4
    width = overlap - 2 * margin
    edge = np.ones(overlap, dtype=np.float32)
    edge[:margin] = 0.0
    edge[margin : margin + width] = (np.arange(width, dtype=np.float32) + 0.5) / width
    return edge


def _ramp(length: int, overlap: int, rise: bool, fall: bool) -> FloatArray:
    ramp = np.ones(length, dtype=np.float32)
    if overlap <= 0:
        return ramp
    n = min(overlap, length)
    edge = _edge(overlap)[:n]
    if rise:
        ramp[:n] = np.minimum(ramp[:n], edge)
    if fall:
        ramp[length - n :] = np.minimum(ramp[length - n :], edge[::-1])
    return ramp


def feather_weight(tile: Tile, height: int, width: int, overlap: int) -> FloatArray:
    """Weights (h, w) that cross-fade the overlaps shared with neighbours, 1 elsewhere.

    A neighbour's weights are complementary across an overlap, and each tile's weight is zero
    within `overlap // 4` of an inner edge, so blending tiles of an operator whose receptive
    field reaches at most that far reproduces the untiled result exactly.
    """
    return np.outer(*feather_ramps(tile, height, width, overlap))


def feather_ramps(
    tile: Tile, height: int, width: int, overlap: int
) -> tuple[FloatArray, FloatArray]:
    """The row and column factors of `feather_weight`, which is their outer product."""
    rows = _ramp(tile.y1 - tile.y0, overlap, tile.y0 > 0, tile.y1 < height)
    cols = _ramp(tile.x1 - tile.x0, overlap, tile.x0 > 0, tile.x1 < width)
    return rows, cols
