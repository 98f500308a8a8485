"""The device pipeline for tiles: prefetched copies, a device-side blend band.

The CUDA transfers (pinned buffers, a side stream, events) run here on the CPU with fake
streams and events, so their bookkeeping is checked where no GPU is available.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from studio.core.protocol import RunContext
from studio.core.tiling import Tile
from studio.engine.neural import executor, pipeline
from studio.engine.neural.executor import run_model
from studio.engine.neural.inference import Extras, WindowRun, infer
from studio.engine.neural.model import LoadedModel
from studio.engine.tiling import run_tiled_at
from tests.engine.neural.test_run import drain


class _Net(torch.nn.Module):
    """Two 3x3 convolutions (then a pixel shuffle for `scale` 2): a 5-px receptive field."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.first = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.second = torch.nn.Conv2d(8, 3 * scale * scale, 3, padding=1)
        self.shuffle = torch.nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.shuffle(self.second(torch.tanh(self.first(x)))))


def _model(scale: int = 1, overlap: int = 16, module: torch.nn.Module | None = None) -> LoadedModel:
    return LoadedModel(architecture="Net", task="upscale" if scale > 1 else "denoise",
                       module=module or _Net(scale).eval(), in_channels=3, out_channels=3,
                       scale=scale, tile_overlap=overlap)  # fmt: skip


def _pixels(height: int = 100, width: int = 86) -> np.ndarray:
    return np.random.default_rng(5).random((height, width, 3), dtype=np.float32)


def _old_path(model: LoadedModel, pixels: np.ndarray, tile: int) -> np.ndarray:
    """The executor before the pipeline: `run_tiled_at` blending host arrays."""
    run = WindowRun(model=model, device=torch.device("cpu"), extras=Extras(),
                    ctx=RunContext())  # fmt: skip

    def on_window(window: np.ndarray, at: Tile) -> np.ndarray:
        return infer(run, window, (at.y0, at.x0))

    overlap = min(model.tile_overlap, tile // 4)  # the executor caps it so
    gen = run_tiled_at(pixels, on_window, tile, overlap, 3, "Running", model.scale)
    out, _ = drain(gen)
    return np.asarray(out)


@pytest.mark.parametrize(("scale", "overlap", "tile"), [(1, 16, 40), (1, 8, 64), (2, 8, 32)])
def test_tiled_result_is_the_old_host_blend_to_the_bit(scale: int, overlap: int, tile: int) -> None:
    model, pixels = _model(scale, overlap), _pixels()
    out, steps = drain(run_model(model, pixels, RunContext(device="cpu", tile=tile)))
    expected = _old_path(model, pixels, tile)
    assert out.shape == (100 * scale, 86 * scale, 3)
    assert len(steps) > 4
    np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------- fake CUDA


class _Event:
    def __init__(self, log: list[tuple[str, object]]) -> None:
        self.log, self.recorded, self.synchronized = log, False, False

    def record(self, stream: object) -> None:
        self.recorded = True
        self.log.append(("record", self))

    def synchronize(self) -> None:
        self.synchronized = True
        self.log.append(("synchronize", self))


class _Stream:
    def __init__(self, log: list[tuple[str, object]]) -> None:
        self.log = log

    def wait_event(self, event: _Event) -> None:
        assert event.recorded, "waited for an event that was never recorded"
        self.log.append(("wait", event))


class FakeCuda:
    """torch.cuda's streams, events and pinned memory, played on the CPU, with a log."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[tuple[str, object]] = []
        self.compute, self.side = _Stream(self.log), _Stream(self.log)
        self.in_side_stream = False
        self.pinned: list[int] = []
        self.streams_of_uploads: list[bool] = []
        monkeypatch.setattr(torch.cuda, "Stream", lambda device: self.side)
        monkeypatch.setattr(torch.cuda, "Event", lambda: _Event(self.log))
        monkeypatch.setattr(torch.cuda, "stream", self._stream)
        monkeypatch.setattr(torch.cuda, "current_stream", lambda device: self.compute)
        log = self.log

        def record_stream(tensor: torch.Tensor, stream: _Stream) -> None:
            log.append(("record_stream", stream))

        monkeypatch.setattr(torch.Tensor, "record_stream", record_stream)
        monkeypatch.setattr(pipeline, "pinned_empty", self._pinned_empty)
        monkeypatch.setattr(pipeline, "transfers_for", pipeline.CudaTransfers)

    @contextlib.contextmanager
    def _stream(self, stream: _Stream) -> Iterator[None]:
        assert stream is self.side
        self.in_side_stream = True
        yield
        self.in_side_stream = False

    def _pinned_empty(self, numel: int) -> torch.Tensor:
        self.pinned.append(numel)
        return torch.full((numel,), float("nan"))


def test_fake_cuda_path_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    model, pixels = _model(2, 8), _pixels()
    expected = _old_path(model, pixels, 32)
    cuda = FakeCuda(monkeypatch)
    uploads: list[bool] = []
    real_to = torch.Tensor.to

    def to(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if cuda.in_side_stream:
            uploads.append(kwargs.get("non_blocking", False))
        return real_to(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    out, steps = drain(run_model(model, pixels, RunContext(device="cpu", tile=32)))
    np.testing.assert_array_equal(out, expected)
    tiles = len(steps) - 1
    assert uploads == [True] * tiles  # every tile copied asynchronously on the side stream
    assert len(cuda.pinned) == 3  # two tile buffers in turn, one band buffer, never regrown
    waits = [event for kind, event in cuda.log if kind == "wait"]
    assert len(waits) == tiles and len({id(e) for e in waits}) == tiles
    assert sum(kind == "record_stream" for kind, _ in cuda.log) == tiles


def test_pinned_tile_buffer_is_reused_only_after_its_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The third upload reuses the first upload's pinned buffer: it must wait for that copy."""
    cuda = FakeCuda(monkeypatch)
    transfers = pipeline.CudaTransfers(torch.device("cpu"))
    window = np.ones((8, 8, 3), np.float32)
    first = transfers.upload(window)
    transfers.upload(window)
    assert first.copied is not None and not first.copied.synchronized
    transfers.upload(window)
    assert first.copied.synchronized
    assert cuda.log.index(("synchronize", first.copied)) > cuda.log.index(("record", first.copied))


def test_rows_reach_the_host_only_after_their_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCuda(monkeypatch)
    transfers = pipeline.CudaTransfers(torch.device("cpu"))
    rows = torch.arange(24, dtype=torch.float32).view(2, 4, 3)
    on_host = transfers.download(rows)
    done = transfers.band.used
    assert done is not None and not done.synchronized
    np.testing.assert_array_equal(on_host(), rows.numpy())
    assert done.synchronized


# --------------------------------------------------------------------------- failures


class _Flaky(torch.nn.Module):
    """`_Net`, out of memory on its `fail_at`-th call (tiles of the first try run before)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.net = _Net(1)
        self.calls, self.fail_at = 0, fail_at
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.sizes.append(max(x.shape[-2:]))
        if self.calls == self.fail_at:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        out: torch.Tensor = self.net(x)
        return out


@pytest.mark.parametrize("fake_cuda", [False, True])
def test_out_of_memory_mid_pipeline_halves_the_tile(
    monkeypatch: pytest.MonkeyPatch, fake_cuda: bool
) -> None:
    pixels = _pixels(300, 280)
    flaky = _Flaky(fail_at=3)
    flaky.net.eval()
    if fake_cuda:
        FakeCuda(monkeypatch)
    logs: list[str] = []
    out, _ = drain(run_model(_model(1, 16, flaky), pixels,
                             RunContext(device="cpu", tile=128, log=logs.append)))  # fmt: skip
    assert any("retrying with 64px tiles" in line for line in logs)
    assert max(flaky.sizes[:3]) > 64 and max(flaky.sizes[3:]) <= 64
    np.testing.assert_array_equal(out, _old_path(_model(1, 16, flaky.net), pixels, 64))


@pytest.mark.parametrize("fake_cuda", [False, True])
def test_cancel_between_tiles_stops_the_model(
    monkeypatch: pytest.MonkeyPatch, fake_cuda: bool
) -> None:
    flaky = _Flaky(fail_at=-1)
    if fake_cuda:
        FakeCuda(monkeypatch)
    gen = run_model(_model(1, 16, flaky), _pixels(), RunContext(device="cpu", tile=40))
    for _ in range(3):
        next(gen)
    gen.close()  # how a job is cancelled
    assert flaky.calls == 2


class _NoBfloat16(torch.nn.Module):
    """`_Net` behind an FFT that, like LaMa's, gets the bfloat16 activations of autocast
    (outside autocast, which would cast them back) and rejects them."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _Net(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        with torch.autocast("cpu", enabled=False):
            spectrum = torch.fft.rfftn(y, dim=(-2, -1))
            return torch.fft.irfftn(spectrum, s=y.shape[-2:], dim=(-2, -1))


def test_float32_redo_after_a_half_precision_failure_in_the_pipeline() -> None:
    module = _NoBfloat16().eval()
    model = LoadedModel(**{**_model(1, 16, module).__dict__, "supports_bfloat16": True})
    pixels = _pixels()
    logs: list[str] = []
    ctx = RunContext(device="cpu", tile=40, precision="bf16", log=logs.append)
    out, _ = drain(run_model(model, pixels, ctx))
    assert any("running it in float32" in line for line in logs)
    np.testing.assert_array_equal(out, _old_path(_model(1, 16, module), pixels, 40))


def test_gpu_tile_leaves_room_for_the_blend_band(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4x model on a 12000-px-wide photo: the band of output rows (12000 * 4 px wide, on the
    device) must fit beside the tile, so the tile is smaller than on a narrow photo."""
    model = _model(4)
    free = 2 * 2**30
    monkeypatch.setattr(executor, "free_bytes", lambda device: free)
    cuda = torch.device("cuda")
    narrow = executor.auto_tile(model, 8000, 1000, cuda, 4)
    wide = executor.auto_tile(model, 8000, 12000, cuda, 4)
    assert narrow is not None and wide is not None and wide < narrow
    budget = executor.GPU_BUDGET * free - model.parameter_bytes
    band_bytes = 2 * wide * 4 * (12000 * 4) * 3 * 4  # band and finished rows, float32 RGB
    assert executor.bytes_per_pixel(model, 4, 1) * wide**2 + band_bytes <= budget


@pytest.mark.parametrize("fake_cuda", [False, True])
def test_streamed_result_reaches_the_sink_top_down_and_matches(
    monkeypatch: pytest.MonkeyPatch, fake_cuda: bool
) -> None:
    """`run_model_into` (super-resolution into a 16-bit store): same rows, each row once, in
    order; the sink gets rows whose memory is reused, so it must copy them (it does here)."""
    model, pixels = _model(2, 8), _pixels()
    expected = _old_path(model, pixels, 32)
    if fake_cuda:
        FakeCuda(monkeypatch)
    tops: list[int] = []
    out = np.full_like(expected, np.nan)

    def sink(top: int, rows: np.ndarray) -> None:
        tops.append(top)
        out[top : top + len(rows)] = rows

    drain(executor.run_model_into(model, pixels, RunContext(device="cpu", tile=32), sink))
    assert tops == sorted(tops) and len(tops) > 2
    np.testing.assert_array_equal(out, expected)


@pytest.mark.gpu
def test_cuda_pipeline_matches_the_cpu() -> None:
    """On a real card: pinned uploads on the side stream, the device band and the
    non_blocking downloads give the CPU's result (float32, TF32 off)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    model, pixels = _model(2, 8), _pixels(300, 260)
    on_cpu, _ = drain(run_model(model, pixels, RunContext(device="cpu", tile=64)))
    model.module.to("cuda")
    on_gpu, steps = drain(run_model(model, pixels, RunContext(device="cuda", tile=64)))
    assert len(steps) > 10
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-5)
