"""The executor's less travelled paths: progress of a whole-image run, grey models on colour
photos, which models may be tiled after running out of memory, the GPU-to-CPU fallback, and
results streamed in bands."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch

from studio.core.errors import OutOfMemoryError
from studio.core.protocol import Progress, RunContext
from studio.engine import device
from studio.engine.neural import executor
from studio.engine.neural.executor import CACHE_KEY, Extras, run_model, run_model_into
from studio.engine.neural.model import LoadedModel
from tests.engine.neural.test_run import drain

OUT_OF_MEMORY = "CUDA out of memory. Tried to allocate 2.00 GiB"


class _Scaled(torch.nn.Module):
    """Multiplies by `gain` (one factor per output channel); out of memory above `limit` px
    a side, or on the "meta" device, which stands in for a GPU here."""

    def __init__(self, gain: tuple[float, ...], limit: int = 10_000) -> None:
        super().__init__()
        self.gain = gain
        self.where = torch.nn.Parameter(torch.zeros(1))  # the module's device
        self.limit = limit
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4, "a model is handed (N, C, H, W)"
        if max(x.shape[-2:]) > self.limit or x.device.type == "meta":
            raise RuntimeError(OUT_OF_MEMORY)
        self.sizes.append((x.shape[-2], x.shape[-1]))
        return x * torch.tensor(self.gain, device=x.device).view(1, -1, 1, 1)


def _model(
    gain: tuple[float, ...] = (0.5, 0.5, 0.5),
    channels_in: int = 3,
    limit: int = 10_000,
    **more: Any,
) -> LoadedModel:
    return LoadedModel(architecture="Scaled", task=more.pop("task", "denoise"),
                       module=_Scaled(gain, limit), in_channels=channels_in,
                       out_channels=len(gain), tile_overlap=8, **more)  # fmt: skip


def _pixels(height: int = 48, width: int = 40) -> np.ndarray:
    return np.random.default_rng(11).random((height, width, 3), dtype=np.float32)


def test_a_whole_image_run_is_one_step_from_empty_to_full() -> None:
    out, steps = drain(run_model(_model(), _pixels(), RunContext(device="cpu")))
    assert [(s.done, s.total) for s in steps] == [(0, 1), (1, 1)]
    collected: list[np.ndarray] = []
    gen = run_model_into(_model(), _pixels(), RunContext(device="cpu"),
                         lambda top, rows: collected.append(rows.copy()))  # fmt: skip
    _, steps = drain(gen)
    assert [(s.done, s.total) for s in steps] == [(0, 1), (1, 1)]
    np.testing.assert_allclose(collected[0], out)


def test_a_tile_as_large_as_the_photo_runs_it_whole() -> None:
    pixels = _pixels(48, 40)
    _, steps = drain(run_model(_model(), pixels, RunContext(device="cpu", tile=48)))
    assert not any("tile" in step.message for step in steps)
    _, steps = drain(run_model(_model(), pixels, RunContext(device="cpu", tile=47)))
    assert any("tile" in step.message for step in steps)


def test_a_grey_model_denoises_each_channel_of_a_colour_photo() -> None:
    pixels = _pixels()
    out, _ = drain(run_model(_model((0.5,), channels_in=1), pixels, RunContext(device="cpu")))
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)


def test_a_grey_to_colour_model_sees_the_photos_luminance() -> None:
    """A colorizer (1 channel in, 3 out) is given Rec. 709 luminance of a colour photo."""
    pixels = _pixels()
    gain = (1.0, 0.5, 0.25)
    model = _model(gain, channels_in=1, task="colorize")
    out, _ = drain(run_model(model, pixels, RunContext(device="cpu")))
    luma = pixels @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    np.testing.assert_allclose(out, luma[..., None] * np.array(gain, np.float32), atol=1e-6)


def test_a_models_own_error_surfaces_unchanged() -> None:
    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("The size of tensor a (4) must match the size of tensor b (3)")

    model = LoadedModel(architecture="Broken", task="denoise", module=Broken(), in_channels=3,
                        out_channels=3)  # fmt: skip
    with pytest.raises(ValueError, match="must match"):
        drain(run_model(model, _pixels(), RunContext(device="cpu")))


def test_a_gpu_looking_error_on_the_cpu_leaves_the_gpu_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(device, "_set_aside", [])

    class Failing(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    model = LoadedModel(architecture="Failing", task="denoise", module=Failing(), in_channels=3,
                        out_channels=3)  # fmt: skip
    with pytest.raises(RuntimeError, match="illegal memory access"):
        drain(run_model(model, _pixels(), RunContext(device="cpu")))
    assert device.gpu_problem() is None


def test_memory_is_released_again_once_the_other_models_are_unloaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, other = _model(limit=70), _model()
    cache = OrderedDict(a=other, b=model)
    cached_at_release: list[int] = []
    monkeypatch.setattr(executor, "release_memory", lambda: cached_at_release.append(len(cache)))
    drain(run_model(model, _pixels(128, 120), RunContext(device="cpu", cache={CACHE_KEY: cache})))
    assert cached_at_release[:2] == [2, 1]


@pytest.mark.parametrize(
    "changes",
    [{"tiling": "discouraged", "extras": frozenset({"mask"})}, {"tiling": "internal"}],
    ids=["inpainting", "internal-tiling"],
)
def test_models_that_must_see_the_whole_photo_are_never_tiled(changes: dict[str, Any]) -> None:
    """Inpainting needs the context around the hole, and a model that tiles itself must not be
    tiled again: out of memory on the CPU, they stop with a clear error."""
    model = _model(limit=70, **changes)
    with pytest.raises(OutOfMemoryError, match="Not enough memory"):
        drain(run_model(model, _pixels(128, 120), RunContext(device="cpu")))
    assert model.module.sizes == []  # type: ignore[union-attr]


def test_a_model_that_discourages_tiling_gets_a_quarter_tile_overlap() -> None:
    discouraged = _model(tiling="discouraged")
    supported = _model()
    assert executor._overlap(discouraged, 64) == 16
    assert executor._overlap(supported, 64) == 8  # its own
    assert executor._overlap(supported, 24) == 6  # capped at a quarter


def test_out_of_gpu_memory_at_the_smallest_tile_moves_to_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The module starts on the stand-in GPU ("meta") and fails there at every tile size; the
    run moves it to the CPU, hands the GPU's memory back, and finishes there in float32."""
    model = _model()
    module = model.module
    module.where = torch.nn.Parameter(torch.zeros(1, device="meta"))
    events: list[str] = []

    def to(where: Any) -> torch.nn.Module:
        events.append(f"to {torch.device(where)}")
        return module

    module.to = to  # type: ignore[method-assign]
    monkeypatch.setattr(executor, "release_memory", lambda: events.append("release"))
    logs: list[str] = []
    pixels = _pixels(128, 120)
    out, _ = drain(run_model(model, pixels, RunContext(device="cpu", log=logs.append)))
    assert [e for e in events if e.startswith("to")] == ["to cpu"]
    assert events[-1] == "release", "the memory is handed back once the model has left the GPU"
    assert any("running on the CPU instead" in line for line in logs)
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)


def test_a_wide_result_is_streamed_in_bands_even_when_one_tile_was_asked_for() -> None:
    """A tile as big as a 1100-px photo would make the result one float32 array: it streams
    in tiles anyway."""
    pixels = _pixels(40, 1100)
    tops: list[int] = []
    out = np.full_like(pixels, np.nan)

    def sink(top: int, rows: np.ndarray) -> None:
        tops.append(top)
        out[top : top + len(rows)] = rows

    ctx = RunContext(device="cpu", tile=4096)
    _, steps = drain(run_model_into(_model(), pixels, ctx, sink))
    assert any("tile" in step.message for step in steps)
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)
    assert isinstance(steps[-1], Progress) and steps[-1].done == steps[-1].total


def test_a_streamed_float_photo_keeps_its_range() -> None:
    """Values up to 3 (linear radiance) come back halved, not clipped to 1, band by band."""
    pixels = _pixels() * 3
    out = np.full_like(pixels, np.nan)

    def sink(top: int, rows: np.ndarray) -> None:
        out[top : top + len(rows)] = rows

    drain(run_model_into(_model(), pixels, RunContext(device="cpu"), sink))
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-5)
    assert out.max() > 1.2


def test_a_whole_image_run_hands_the_model_the_mask_where_the_photo_is() -> None:
    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Any) -> torch.Tensor:
        return x * (1 - cond.mask)

    model = LoadedModel(architecture="Masked", task="inpaint", module=torch.nn.Identity(),
                        in_channels=3, out_channels=3, forward=forward)  # fmt: skip
    mask = np.zeros((48, 40), np.float32)
    mask[::3, ::2] = 1
    out, _ = drain(run_model(model, np.ones((48, 40, 3), np.float32), RunContext(device="cpu"),
                             Extras(mask=mask)))  # fmt: skip
    np.testing.assert_array_equal(out[..., 0], 1 - mask)
