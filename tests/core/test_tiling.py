"""Tiling: the grid covers the image, the weights blend, and tiled runs equal untiled ones."""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from studio.core.protocol import Progress
from studio.core.tiling import Tile, feather_ramps, feather_weight, tile_grid
from studio.engine.tiling import run_tiled, run_tiled_at, run_tiled_into

Array = np.ndarray


def _drain(run: Generator[Progress, None, Array]) -> tuple[Array, list[Progress]]:
    steps = []
    while True:
        try:
            steps.append(next(run))
        except StopIteration as stop:
            return stop.value, steps


def _conv5(kernel: Array) -> Callable[[Array], Array]:
    """A 5x5 cross-channel convolution (receptive-field radius 2) with mirrored borders."""

    def apply(tile: Array) -> Array:
        out = np.zeros((*tile.shape[:2], kernel.shape[3]), np.float32)
        for c_in in range(tile.shape[2]):
            for c_out in range(kernel.shape[3]):
                k = kernel[:, :, c_in, c_out]
                out[..., c_out] += ndimage.correlate(tile[..., c_in], k, mode="mirror")
        return out

    return apply


def _gaussian(tile: Array) -> Array:
    """Gaussian blur, sigma 1.5 truncated at 4 sigma: receptive-field radius 6."""
    return ndimage.gaussian_filter(tile, sigma=(1.5, 1.5, 0), mode="reflect", truncate=4.0)


CASES = [
    # (height, width, tile, overlap)
    (97, 131, 40, 8),  # odd sizes, uneven last tiles
    (64, 64, 32, 8),  # exact multiples
    (30, 200, 48, 12),  # a single row of tiles
    (1, 150, 32, 8),  # a one-pixel-high image
    (150, 3, 32, 8),  # a single column, narrower than the kernel
    (20, 25, 64, 16),  # image smaller than one tile
    (71, 71, 40, 10),  # last tile almost on top of its neighbour
]


@pytest.mark.parametrize(("height", "width", "tile", "overlap"), CASES)
def test_tiled_convolution_equals_untiled(rng, height, width, tile, overlap):
    pixels = rng.random((height, width, 3), dtype=np.float32)
    conv = _conv5(rng.standard_normal((5, 5, 3, 2)).astype(np.float32))
    tiled, _ = _drain(run_tiled(pixels, conv, tile, overlap, out_channels=2))
    # Borders included: tiles touching the image border see the same mirrored padding.
    np.testing.assert_allclose(tiled, conv(pixels), atol=1e-4, rtol=0)


@pytest.mark.parametrize(("height", "width"), [(97, 131), (33, 160)])
def test_tiled_gaussian_equals_untiled_when_overlap_covers_its_reach(rng, height, width):
    pixels = rng.random((height, width, 3), dtype=np.float32)
    tiled, _ = _drain(run_tiled(pixels, _gaussian, tile=64, overlap=24))  # 24 // 4 >= radius 6
    np.testing.assert_allclose(tiled, _gaussian(pixels), atol=1e-4, rtol=0)


def test_too_small_an_overlap_shows_seams(rng):
    """The equality above is not automatic: an overlap shorter than the reach leaves seams."""
    pixels = rng.random((97, 131, 3), dtype=np.float32)
    conv = _conv5(rng.standard_normal((5, 5, 3, 1)).astype(np.float32))
    tiled, _ = _drain(run_tiled(pixels, conv, 40, 4, out_channels=1))  # 4 // 4 < radius 2
    assert np.abs(tiled - conv(pixels)).max() > 1e-3


def test_progress_is_reported_for_every_tile(rng):
    pixels = rng.random((100, 100, 1), dtype=np.float32)
    count = len(tile_grid(100, 100, 40, 8))
    _, steps = _drain(run_tiled(pixels, lambda t: t, 40, 8, message="Denoising"))
    assert count > 1 and len(steps) >= count
    assert [s.done for s in steps] == sorted(s.done for s in steps)
    assert all(s.total == count for s in steps) and steps[-1].done == count
    assert all(s.message.startswith("Denoising") for s in steps)


def test_tile_must_exceed_twice_the_overlap():
    with pytest.raises(ValueError, match="twice the overlap"):
        tile_grid(100, 100, 32, 16)


def test_neighbours_cross_fade_to_one():
    """Where two tiles share exactly `overlap` pixels their weights sum to one."""
    tiles = tile_grid(1, 96, 40, 8)  # 38 wide at 0, 30, 58: the first pair shares 8 pixels
    first, second = (feather_weight(t, 1, 96, 8)[0] for t in tiles[:2])
    shared = slice(tiles[1].x0, tiles[0].x1)
    total = first[shared.start - tiles[0].x0 :] + second[: shared.stop - tiles[1].x0]
    np.testing.assert_allclose(total, 1.0)
    assert first[-2:].max() == 0 and second[:2].max() == 0  # overlap // 4 dead margin


def test_a_tile_fades_in_wherever_a_neighbour_overlaps_it_and_nowhere_else():
    """On every small grid, the 1-px overlaps included (where a tile can start at row 1 and
    two tiles can share more than the overlap), each edge of a tile that another tile overlaps
    fades, and an edge on the photo's border keeps full weight."""
    for length in range(2, 24):
        for tile in range(3, 12):
            for overlap in range(1, (tile + 1) // 2):
                tiles = tile_grid(length, length, tile, overlap)
                spans = {(t.y0, t.y1) for t in tiles}
                for t in tiles:
                    rows, cols = feather_ramps(t, length, length, overlap)
                    for ramp, start, end in ((rows, t.y0, t.y1), (cols, t.x0, t.x1)):
                        starts_shared = any(a < start < b for a, b in spans)
                        ends_shared = any(a < end < b for a, b in spans)
                        case = (length, tile, overlap, start, end)
                        assert (ramp[0] < 1) == starts_shared, case
                        assert (ramp[-1] < 1) == ends_shared, case


def test_tiles_are_balanced_so_little_work_is_repeated():
    """A 1225 x 816 photo in 384-px tiles: no last tile almost on top of its neighbour."""
    tiles = tile_grid(816, 1225, 384, 24)
    work = sum((t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles)
    assert len(tiles) == 12 and work < 1.15 * 816 * 1225


@settings(max_examples=150, deadline=None)
@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    tile=st.integers(3, 128),
    overlap=st.integers(0, 63),
)
def test_tiles_cover_the_image_and_weights_are_positive(height, width, tile, overlap):
    if tile <= 2 * overlap:
        return
    tiles = tile_grid(height, width, tile, overlap)
    covered = np.zeros((height, width), np.int32)
    weights = np.zeros((height, width), np.float64)
    for t in tiles:
        assert 0 <= t.y0 < t.y1 <= height and 0 <= t.x0 < t.x1 <= width
        assert t.y1 - t.y0 <= tile and t.x1 - t.x0 <= tile
        w = feather_weight(t, height, width, overlap)
        assert w.shape == (t.y1 - t.y0, t.x1 - t.x0)
        assert w.min() >= 0 and w.max() <= 1
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
        weights[t.y0 : t.y1, t.x0 : t.x1] += w
    assert covered.min() >= 1
    assert weights.min() > 0


def test_run_tiled_reports_every_tile_then_the_end() -> None:
    pixels = np.zeros((100, 90, 1), np.float32)
    out, steps = _drain(run_tiled(pixels, lambda t: t + 1, tile=64, overlap=8, message="Work"))
    count = len(tile_grid(100, 90, 64, 8))
    assert count > 1
    assert [(p.done, p.total) for p in steps] == [(i, count) for i in range(count + 1)]
    assert [p.message for p in steps[:-1]] == [
        f"Work: tile {i}/{count}" for i in range(1, count + 1)
    ]
    assert steps[-1].message == "Work"
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_run_tiled_hands_a_small_image_over_whole() -> None:
    pixels = np.zeros((40, 30, 3), np.float32)
    seen: list[tuple[int, ...]] = []
    out, steps = _drain(run_tiled(pixels, lambda t: seen.append(t.shape) or t, 80, 8))
    assert seen == [(40, 30, 3)]
    assert [(p.done, p.total, p.message) for p in steps] == [
        (0, 1, "Processing"),
        (1, 1, "Processing"),
    ]
    assert out.dtype == np.float32


def test_rows_handed_over_are_the_photo_s_own_size_unless_a_scale_is_asked() -> None:
    pixels = np.random.default_rng(6).random((150, 70, 3), dtype=np.float32)
    rows: list[np.ndarray] = []
    _drain(run_tiled_into(pixels, lambda t, at: t, lambda top, r: rows.append(r.copy()), 64, 8))
    np.testing.assert_allclose(np.concatenate(rows), pixels, atol=1e-6)


def test_run_tiled_raises_a_small_tile_to_four_overlaps() -> None:
    pixels = np.zeros((130, 130, 1), np.float32)
    _, steps = _drain(run_tiled(pixels, lambda t: t, tile=20, overlap=10))
    assert steps[0].total == len(tile_grid(130, 130, 40, 10)) == 16


@pytest.mark.parametrize(("tile", "overlap"), [(16, 2), (16, 8), (200, 4)])
def test_each_tile_function_is_told_its_region(tile: int, overlap: int) -> None:
    """Even when the tile is raised to four overlaps, and when one tile covers the image."""
    rows, cols = np.mgrid[0:37, 0:53].astype(np.float32)
    pixels = np.stack([rows, cols], axis=-1)
    seen: list[Tile] = []

    def where(window: Array, at: Tile) -> Array:
        seen.append(at)
        assert window.shape[:2] == (at.y1 - at.y0, at.x1 - at.x0)
        assert window[0, 0, 0] == at.y0 and window[0, 0, 1] == at.x0
        return window

    out, _ = _drain(run_tiled_at(pixels, where, tile, overlap))
    assert np.array_equal(out, pixels) and len(seen) >= 1
    assert len({(t.y0, t.x0) for t in seen}) == len(seen)


@pytest.mark.parametrize("factor", [2, 3])
def test_block_means_reduce_rows_given_in_any_chunks_to_the_image_s_block_averages(rng, factor):
    from studio.engine.tiling import BlockMeans

    image = rng.random((6 * factor + 1, 4 * factor, 2), dtype=np.float32)  # a spare last row
    received: list[tuple[int, Array]] = []
    means = BlockMeans(lambda top, rows: received.append((top, rows.copy())), factor)
    for top, bottom in [(0, 1), (1, 2 * factor + 1), (2 * factor + 1, len(image))]:
        means(top, image[top:bottom])
    whole = image[: 6 * factor].reshape(6, factor, 4, factor, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(np.concatenate([rows for _, rows in received]), whole, rtol=1e-6)
    starts = np.cumsum([0] + [len(rows) for _, rows in received])[:-1]
    assert [top for top, _ in received] == list(starts)  # each block row where it belongs
