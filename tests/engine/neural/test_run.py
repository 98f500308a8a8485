"""Running models through the studio's own path (run_job), and the executor's safeguards."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from studio.core.errors import (
    EngineUnavailableError,
    MissingInputError,
    ModelError,
    OutOfMemoryError,
)
from studio.core.image import Image
from studio.core.protocol import STYLE, JobInputs, Progress, RunContext
from studio.engine import jobs
from studio.engine.neural import executor
from studio.engine.neural.executor import Extras, run_model
from studio.engine.neural.model import LoadedModel
from studio.engine.registry import build_registry
from tests.engine.neural._tiny import TINY, save

H, W = 44, 52  # deliberately not multiples of 4 or 8: the executor must pad and crop


def drain(gen: Generator[Progress, None, Any]) -> tuple[Any, list[Progress]]:
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            return stop.value, steps


@pytest.fixture(scope="module")
def tiny_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny_run")
    return {name: save(t.build(), folder, name, "safetensors") for name, t in TINY.items()}


def _inputs(rng: np.random.Generator, channels: int) -> JobInputs:
    pixels = rng.random((H, W, channels), dtype=np.float32)
    hints = np.zeros((H, W, 4), np.float32)
    hints[10:14, 10:14] = (1.0, 0.2, 0.1, 1.0)
    style = Image(rng.random((40, 40, 3), dtype=np.float32))
    mask = np.zeros((H, W), np.float32)
    mask[5:15, 5:20] = 1
    return JobInputs((Image(pixels),), {"hints": hints, "style": style, "mask": mask})


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(TINY))
def test_runs_through_run_job(
    tiny_paths: dict[str, Path], name: str, channels: int, device: str
) -> None:
    rng = np.random.default_rng(1)
    task = TINY[name].task
    ctx = RunContext(device=device, model_path=tiny_paths[name])
    request = jobs.JobRequest(task=task, inputs=_inputs(rng, channels), engine="model")
    result, steps = drain(jobs.run_job(build_registry(), request, ctx))
    expected_channels = 3 if task in ("colorize", "style") else channels
    assert result.pixels.shape == (H, W, expected_channels)
    assert np.isfinite(result.pixels).all()
    assert result.pixels.min() >= 0.0 and result.pixels.max() <= 1.0
    assert steps and f"{task}/model" in result.meta.history[-1]
    assert all(0 <= step.done <= step.total for step in steps)
    assert steps[-1].done == steps[-1].total  # the progress bar ends full


def test_tiled_run_matches_untiled(tiny_paths: dict[str, Path]) -> None:
    rng = np.random.default_rng(2)
    pixels = rng.random((96, 112, 3), dtype=np.float32)
    inputs = JobInputs(images=(Image(pixels),))
    request = jobs.JobRequest(task="denoise", inputs=inputs, engine="model", params={"sigma": 20})
    whole, _ = drain(
        jobs.run_job(build_registry(), request, RunContext(model_path=tiny_paths["ffdnet_kair"]))
    )
    ctx = RunContext(model_path=tiny_paths["ffdnet_kair"], tile=48)
    tiled, steps = drain(jobs.run_job(build_registry(), request, ctx))
    assert any("tile" in s.message for s in steps)
    mse = float(np.mean((whole.pixels - tiled.pixels) ** 2))
    assert 10 * np.log10(1 / max(mse, 1e-12)) > 50


def test_style_model_is_not_tiled_even_when_asked(tiny_paths: dict[str, Path]) -> None:
    inputs = JobInputs(
        images=(Image(np.random.default_rng(3).random((96, 96, 3), dtype=np.float32)),)
    )
    ctx = RunContext(model_path=tiny_paths["transformer_net"], tile=48)
    request = jobs.JobRequest(task="style", inputs=inputs, engine="model")
    _, steps = drain(jobs.run_job(build_registry(), request, ctx))
    assert not any("tile" in s.message for s in steps)


def test_second_job_reuses_the_loaded_model(
    tiny_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = executor.load_model
    monkeypatch.setattr(executor, "load_model", lambda path: calls.append(path) or real(path))
    ctx = RunContext(model_path=tiny_paths["zero_dce"])
    request = jobs.JobRequest(
        task="hdr", inputs=_inputs(np.random.default_rng(4), 3), engine="model"
    )
    for _ in range(2):
        drain(jobs.run_job(build_registry(), request, ctx))
    assert len(calls) == 1


def test_model_engine_needs_a_model_file() -> None:
    spec = build_registry().get("denoise", "model")
    availability = spec.available(RunContext())
    assert not availability.ok and "import one into your models" in availability.reason
    assert "studio " not in availability.reason and "--" not in availability.reason
    request = jobs.JobRequest(
        task="denoise", inputs=_inputs(np.random.default_rng(5), 1), engine="model"
    )
    with pytest.raises(EngineUnavailableError, match="needs a model file"):
        drain(jobs.run_job(build_registry(), request, RunContext()))


def test_model_of_another_task_is_refused(tiny_paths: dict[str, Path]) -> None:
    request = jobs.JobRequest(
        task="denoise", inputs=_inputs(np.random.default_rng(6), 3), engine="model"
    )
    ctx = RunContext(model_path=tiny_paths["transformer_net"])
    with pytest.raises(ModelError, match="is a style model"):
        drain(jobs.run_job(build_registry(), request, ctx))


def test_adain_without_style_image_is_refused(tiny_paths: dict[str, Path]) -> None:
    inputs = JobInputs(images=(Image(np.zeros((32, 32, 3), np.float32)),))
    request = jobs.JobRequest(task="style", inputs=inputs, engine="model")
    with pytest.raises(MissingInputError, match="AdaIN: give a style image with --style") as err:
        drain(jobs.run_job(build_registry(), request, RunContext(model_path=tiny_paths["adain"])))
    assert err.value.window_text == STYLE.missing.window


def test_registry_builds_without_torch() -> None:
    code = (
        "import sys; from studio.engine.registry import build_registry; "
        "build_registry(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- executor safeguards


class _Fussy(torch.nn.Module):
    """Doubles its input, but runs out of memory above `limit` pixels a side."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.scale = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[-2:]) > self.limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if torch.is_autocast_enabled("cpu"):
            return x * float("nan")
        return x * self.scale


def _fussy_model(limit: int) -> LoadedModel:
    return LoadedModel(architecture="Fussy", task="denoise", module=_Fussy(limit), in_channels=3,
                       out_channels=3, tile_overlap=8)  # fmt: skip


def test_out_of_memory_halves_the_tile() -> None:
    logs: list[str] = []
    pixels = np.random.default_rng(7).random((128, 120, 3), dtype=np.float32)
    out, _ = drain(run_model(_fussy_model(70), pixels, RunContext(log=logs.append)))
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)
    assert any("retrying with 64px tiles" in line for line in logs)


def test_out_of_memory_at_the_smallest_tile_is_reported() -> None:
    pixels = np.zeros((128, 128, 3), np.float32)
    with pytest.raises(OutOfMemoryError, match="Not enough memory"):
        drain(run_model(_fussy_model(16), pixels, RunContext()))


def test_nan_in_half_precision_is_redone_in_float32() -> None:
    model = _fussy_model(10_000)
    model = LoadedModel(**{**model.__dict__, "supports_bfloat16": True})
    pixels = np.random.default_rng(8).random((32, 32, 3), dtype=np.float32)
    out, _ = drain(run_model(model, pixels, RunContext(device="cpu", precision="bf16")))
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)


def test_tile_size_follows_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fussy_model(10_000)
    cuda = torch.device("cuda")
    monkeypatch.setattr(executor, "free_bytes", lambda device: 64 * 2**30)
    assert executor.auto_tile(model, 512, 512, cuda, 4) is None
    monkeypatch.setattr(executor, "free_bytes", lambda device: 8 * 2**20)
    small = executor.auto_tile(model, 4000, 6000, cuda, 4)
    assert small is not None and executor.MIN_TILE <= small < 4000


def test_cpu_tiles_stay_cache_sized_however_much_memory_is_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _fussy_model(10_000)
    cpu = torch.device("cpu")
    monkeypatch.setattr(executor, "free_bytes", lambda device: 64 * 2**30)
    assert executor.auto_tile(model, 200, 240, cpu, 4) is None
    assert executor.auto_tile(model, 4000, 6000, cpu, 4) == executor.CPU_TILE


def test_extras_reach_the_model_per_tile() -> None:
    seen: list[tuple[int, ...]] = []

    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Any) -> torch.Tensor:
        seen.append(tuple(cond.mask.shape))
        return x * (1 - cond.mask)

    conv = torch.nn.Conv2d(1, 1, 1)
    model = LoadedModel(architecture="Masked", task="inpaint", module=conv, in_channels=3,
                        out_channels=3, forward=forward, tile_overlap=8)  # fmt: skip
    pixels = np.ones((64, 64, 3), np.float32)
    mask = np.zeros((64, 64), np.float32)
    mask[40:, 40:] = 1
    out, _ = drain(run_model(model, pixels, RunContext(tile=32), Extras(mask=mask)))
    assert len(seen) > 1
    np.testing.assert_allclose(out[..., 0], 1 - mask, atol=1e-6)


@pytest.mark.gpu
def test_cuda_half_precision_agrees_with_cpu(tiny_paths: dict[str, Path]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    inputs = JobInputs(
        images=(Image(np.random.default_rng(9).random((64, 64, 3), dtype=np.float32)),)
    )
    request = jobs.JobRequest(task="denoise", inputs=inputs, engine="model", params={"sigma": 15})
    path = tiny_paths["ffdnet_kair"]
    cpu, _ = drain(
        jobs.run_job(build_registry(), request, RunContext(device="cpu", model_path=path))
    )
    gpu, _ = drain(
        jobs.run_job(build_registry(), request, RunContext(device="cuda", model_path=path))
    )
    assert np.abs(cpu.pixels - gpu.pixels).max() < 1e-2


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"),
            True,
        ),
        (RuntimeError("The size of tensor a (4) must match the size of tensor b (3)"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_is_recognised(error: Exception, expected: bool) -> None:
    assert executor.is_out_of_memory(error) is expected


def test_installed_models_become_engines(
    tiny_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from studio.engine.models import store

    record = SimpleNamespace(
        id="my-ffdnet",
        name="My FFDNet",
        task="denoise",
        architecture="FFDNet",
        path=tiny_paths["ffdnet_kair"],
        licence="MIT",
        params={"sigma": 12.0},
    )
    monkeypatch.setattr(store, "installed_models", lambda: [record])
    registry = build_registry()
    spec = registry.get("denoise", "my-ffdnet")
    assert spec.available(RunContext()).ok and spec.params().sigma == 12.0  # type: ignore[attr-defined]
    assert (
        registry.get("deblur", "pnp").available(RunContext()).ok
    )  # the installed FFDNet is its prior
    inputs = JobInputs(images=(Image(np.full((24, 24, 3), 0.5, np.float32)),))
    result, _ = drain(
        jobs.run_job(registry, jobs.JobRequest("denoise", inputs, engine="my-ffdnet"), RunContext())
    )
    assert result.pixels.shape == (24, 24, 3)
