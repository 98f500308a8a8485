"""How the executor sizes tiles: the largest that fits the free memory, and never more.

The expected tiles are found here by trying every side in steps of 32 px against the
executor's stated memory model (activations of the widest layer per pixel, plus on the GPU the
float32 blend band of the output rows), not by its closed-form solution.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from studio.core.protocol import RunContext
from studio.engine.neural import executor
from studio.engine.neural.executor import ACTIVATION_FACTOR, auto_tile
from studio.engine.neural.inference import Extras, WindowRun
from studio.engine.neural.model import LoadedModel

CUDA, CPU = torch.device("cuda"), torch.device("cpu")
STEP = 32  # tiles are multiples of 32 px: every model's size multiple (2, 4, 8, 16, 32) divides it
MB = 2**20


class _Net(torch.nn.Module):
    """A conv layer `width` channels wide, an optional Linear layer `linear` wide, and
    `weights_mb` of further weights (so that the weights take a real share of the memory)."""

    def __init__(self, width: int, linear: int = 0, weights_mb: float = 0) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width, 3, padding=1)
        self.linear = torch.nn.Linear(width, linear) if linear else None
        self.weights = torch.nn.Parameter(torch.zeros(int(weights_mb * MB) // 4))


def _model(
    width: int = 8,
    linear: int = 0,
    weights_mb: float = 0,
    scale: int = 1,
    overlap: int = 8,
    channels: int = 3,
) -> LoadedModel:
    return LoadedModel(architecture="Net", task="upscale" if scale > 1 else "denoise",
                       module=_Net(width, linear, weights_mb), in_channels=channels,
                       out_channels=channels, scale=scale, tile_overlap=overlap)  # fmt: skip


def _need(
    model: LoadedModel, widest: int, image_width: int, element: int, batch: int, device: str
) -> Callable[[int], float]:
    """Bytes a tile of side s needs beside the weights: `element`-byte activations of the
    widest layer (ACTIVATION_FACTOR of them live at once) for each of `batch` images, and on
    the GPU the float32 blend band and its finished rows, `s` output rows of the image wide."""
    per_pixel = element * batch * ACTIVATION_FACTOR * widest
    band_row = 2 * 4 * model.scale**2 * image_width * model.out_channels * batch

    def need(side: int) -> float:
        return per_pixel * side**2 + (band_row * side if device == "cuda" else 0)

    return need


def _largest_fitting(need: Callable[[int], float], budget: float) -> int:
    side = 0
    while need(side + STEP) <= budget:
        side += STEP
    return side


def _free(monkeypatch: pytest.MonkeyPatch, free: float) -> None:
    monkeypatch.setattr(executor, "free_bytes", lambda device: int(free))


@pytest.mark.parametrize(
    ("width", "linear", "scale", "height_width", "free_mb"),
    [
        (8, 0, 1, (3000, 4000), 40),  # the weights (10 MB) take a quarter of the budget
        (16, 0, 2, (2000, 3000), 300),  # the band of a 2x result is a third of the need
        (8, 96, 1, (4000, 6000), 200),  # a Linear layer is the widest
        (24, 0, 4, (1000, 1500), 500),
    ],
)
def test_gpu_tile_is_the_largest_that_fits_and_leaves_headroom(
    monkeypatch: pytest.MonkeyPatch,
    width: int,
    linear: int,
    scale: int,
    height_width: tuple[int, int],
    free_mb: float,
) -> None:
    model = _model(width, linear, weights_mb=10, scale=scale)
    height, image_width = height_width
    _free(monkeypatch, free_mb * MB)
    need = _need(model, max(width, linear), image_width, 4, 1, "cuda")
    tile = auto_tile(model, height, image_width, CUDA, 4)
    budget = executor.GPU_BUDGET * free_mb * MB - model.parameter_bytes
    expected = _largest_fitting(need, budget)
    assert expected >= 128, "the case must be decided by memory, not by the smallest tile"
    assert tile == expected
    assert model.parameter_bytes + need(tile) < 0.9 * free_mb * MB, "the GPU needs headroom"


def test_cpu_tile_leaves_half_the_ram_to_the_photo_and_its_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the CPU the image, the result and the tile share the RAM; the blend band is host
    memory too, so only activations count against the tile's share."""
    model = _model(8, weights_mb=10)
    free = 40 * MB
    _free(monkeypatch, free)
    need = _need(model, 8, 4000, 4, 1, "cpu")
    tile = auto_tile(model, 3000, 4000, CPU, 4)
    assert tile is not None and tile < executor.CPU_TILE, "memory must decide this case"
    assert tile == _largest_fitting(need, executor.CPU_BUDGET * free - model.parameter_bytes)
    assert model.parameter_bytes + need(tile) <= free / 2
    exact = 2 * (model.parameter_bytes + need(192))  # the 192-px tile's activations fill it
    _free(monkeypatch, exact)
    assert auto_tile(model, 3000, 4000, CPU, 4) == 192


def test_with_ample_ram_cpu_tiles_are_cache_sized_multiples_of_the_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _free(monkeypatch, 64 * 2**30)
    side = executor.CPU_TILE
    assert auto_tile(_model(), side, side, CPU, 4) is None, "a photo one cache tile big runs whole"
    tile = auto_tile(_model(), side + 1, 100, CPU, 4)
    assert tile is not None and tile <= side and tile % STEP == 0


def test_cpu_tile_keeps_a_wide_models_full_overlap_and_no_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model seeing 96 px around each pixel needs tiles of 4 x 96 to keep its overlap (the
    executor caps the overlap at a quarter of the tile); cache-sized tiles stay the smallest
    such tile."""
    model = _model(overlap=96)
    _free(monkeypatch, 64 * 2**30)
    tile = auto_tile(model, 3000, 4000, CPU, 4)
    assert tile is not None
    assert executor._overlap(model, tile) == 96
    assert executor._overlap(model, tile - STEP) < 96


def test_a_photo_whose_activations_just_fit_runs_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(8, weights_mb=1)
    height, width = 100, 120
    per_pixel = 4 * ACTIVATION_FACTOR * 8
    free = (per_pixel * height * width + model.parameter_bytes) / executor.GPU_BUDGET
    assert executor.GPU_BUDGET * free - model.parameter_bytes == per_pixel * height * width
    monkeypatch.setattr(executor, "free_bytes", lambda device: free)
    assert auto_tile(model, height, width, CUDA, 4) is None
    assert auto_tile(model, height + 1, width, CUDA, 4) is not None


def test_no_free_memory_gives_the_smallest_tile_with_room_beyond_its_overlaps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At least 64 px, and at least one step of pixels between the overlaps on both sides."""
    _free(monkeypatch, 0)
    for overlap in (8, 48, 64):
        tile = auto_tile(_model(overlap=overlap), 3000, 4000, CUDA, 4)
        assert tile is not None and tile >= 64 and tile - 2 * overlap >= STEP
        assert tile == 64 or tile - 2 * overlap == STEP


@pytest.mark.parametrize(("half", "grey_model"), [(False, False), (True, False), (True, True)])
def test_tile_accounts_for_half_precision_and_grey_models_run_on_colour(
    monkeypatch: pytest.MonkeyPatch, half: bool, grey_model: bool
) -> None:
    """Half precision halves the activations; a grey model on a colour photo runs the three
    channels as a batch of three."""
    channels = 1 if grey_model else 3
    model = _model(16, weights_mb=10, channels=channels)
    free = 300 * MB
    _free(monkeypatch, free)
    run = WindowRun(model=model, device=CUDA, extras=Extras(), ctx=RunContext(),
                    autocast=torch.float16 if half else None,
                    batch_channels=grey_model)  # fmt: skip
    tile = executor._initial_tile(run, 3000, 4000, RunContext())
    element, batch = (2 if half else 4), (3 if grey_model else 1)
    need = _need(model, 16, 4000, element, batch, "cuda")
    assert tile == _largest_fitting(need, executor.GPU_BUDGET * free - model.parameter_bytes)
