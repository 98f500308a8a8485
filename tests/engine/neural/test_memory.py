"""Out of memory and GPU failures in the executor, simulated on the CPU."""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np
import pytest
import torch

from studio.core.errors import DeviceError
from studio.core.protocol import RunContext
from studio.engine import device
from studio.engine.memory import is_out_of_memory, is_unrecoverable_gpu_error
from studio.engine.neural import executor
from studio.engine.neural.executor import CACHE_KEY, run_model
from studio.engine.neural.model import LoadedModel
from tests.engine.neural.test_run import drain

LIBRARY_ALLOCATION_FAILURES = [
    "cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE",
    "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
    "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
    "cuFFT error: CUFFT_ALLOC_FAILED",
]


class _Failing(torch.nn.Module):
    """Halves its input; above `limit` pixels a side it allocates a tile and fails."""

    def __init__(self, limit: int, message: str) -> None:
        super().__init__()
        self.limit, self.message = limit, message
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.failed_tiles: list[weakref.ref[torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[-2:]) > self.limit:
            activations = torch.empty(64, *x.shape[-2:])
            self.failed_tiles.append(weakref.ref(activations))
            raise RuntimeError(self.message)
        return x * self.scale


def _model(
    limit: int, message: str = "CUDA out of memory. Tried to allocate 2.00 GiB"
) -> LoadedModel:
    module = _Failing(limit, message)
    return LoadedModel(architecture="Failing", task="denoise", module=module, in_channels=3,
                       out_channels=3, tile_overlap=8)  # fmt: skip


def _pixels() -> np.ndarray:
    return np.random.default_rng(3).random((128, 120, 3), dtype=np.float32)


@pytest.mark.parametrize("message", LIBRARY_ALLOCATION_FAILURES)
def test_library_allocation_failures_count_as_out_of_memory(message: str) -> None:
    assert is_out_of_memory(RuntimeError(message))
    logs: list[str] = []
    pixels = _pixels()
    out, _ = drain(
        run_model(_model(70, message), pixels, RunContext(device="cpu", log=logs.append))
    )
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)
    assert any("retrying with 64px tiles" in line for line in logs)


def test_torch_out_of_memory_error_is_recognised() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("CUDNN_STATUS_BAD_PARAM"))


def test_memory_is_released_after_the_failed_tile_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cleanup runs once the traceback (and the failed tile it holds) is released."""
    model = _model(70)
    module = model.module
    assert isinstance(module, _Failing)
    alive_at_cleanup: list[bool] = []

    def release() -> None:
        alive_at_cleanup.append(any(ref() is not None for ref in module.failed_tiles))

    monkeypatch.setattr(executor, "release_memory", release)
    drain(run_model(model, _pixels(), RunContext(device="cpu")))
    assert module.failed_tiles and alive_at_cleanup and not any(alive_at_cleanup)


def test_first_out_of_memory_unloads_the_other_cached_models() -> None:
    model, other = _model(70), _model(10_000)
    logs: list[str] = []
    ctx = RunContext(
        device="cpu", cache={CACHE_KEY: OrderedDict(a=other, b=model)}, log=logs.append
    )
    drain(run_model(model, _pixels(), ctx))
    assert list(ctx.cache[CACHE_KEY].values()) == [model]
    assert any("unloaded 1 other cached model" in line for line in logs)


def test_discouraged_tiling_model_is_tiled_with_large_overlap_after_whole_image_fails() -> None:
    model = _model(70)
    model = LoadedModel(**{**model.__dict__, "tiling": "discouraged"})
    module = model.module
    assert isinstance(module, _Failing)
    sizes: list[tuple[int, ...]] = []
    module.register_forward_pre_hook(lambda m, args: sizes.append(tuple(args[0].shape[-2:])))
    pixels = _pixels()
    out, _ = drain(run_model(model, pixels, RunContext(device="cpu")))
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)
    assert sizes[0] == (128, 120)  # the whole image first
    assert all(max(size) <= 64 for size in sizes[1:]) and len(sizes) > 4


@pytest.mark.parametrize(
    "message",
    [
        "CUDA error: an illegal memory access was encountered",
        "CUDA error: the launch timed out and was terminated",
        "CUDA error: unspecified launch failure",
    ],
)
def test_unrecoverable_gpu_error_sets_the_gpu_aside(
    monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    monkeypatch.setattr(device, "_set_aside", [])
    monkeypatch.setattr(executor, "_on_gpu", lambda run: True)
    assert is_unrecoverable_gpu_error(RuntimeError(message))
    ctx = RunContext(device="cpu", cache={CACHE_KEY: OrderedDict()})
    with pytest.raises(DeviceError, match="restart Studio"):
        drain(run_model(_model(70, message), _pixels(), ctx))
    assert CACHE_KEY not in ctx.cache
    assert device.resolve_device("auto") == torch.device("cpu")
    assert message.split(": ", 1)[1] in (device.gpu_problem() or "")
