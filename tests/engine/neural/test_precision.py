"""Precision policy, half-precision fallbacks and float range, reproduced on the CPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs, RunContext
from studio.core.tiling import tile_grid
from studio.engine import jobs
from studio.engine.neural import precision
from studio.engine.neural.executor import run_model
from studio.engine.neural.model import Conditioning, LoadedModel
from studio.engine.registry import build_registry
from tests.engine.neural._tiny import TINY, save
from tests.engine.neural.test_run import drain

CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def tiny_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny_precision")
    return {name: save(t.build(), folder, name, "safetensors") for name, t in TINY.items()}


class _Halving(torch.nn.Module):
    """Halves its input; counts its calls in float32 and under autocast."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.calls = {"float32": 0, "half": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = torch.is_autocast_enabled("cpu")
        self.calls["half" if half else "float32"] += 1
        return x * self.scale


def _model(forward: Any = None, **changes: Any) -> LoadedModel:
    model = LoadedModel(architecture="Halving", task="denoise", module=_Halving(), in_channels=3,
                        out_channels=3, supports_bfloat16=True, tile_overlap=8)  # fmt: skip
    if forward is not None:
        changes["forward"] = forward
    return dataclasses.replace(model, **changes)


def _fft_forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """Like LaMa's Fourier units on a GPU, where autocast hands bfloat16 to cuFFT, which
    rejects it (CPU autocast would cast to float32 first, so it is switched off around it)."""
    y = torch.nn.functional.conv2d(module(x), torch.eye(3)[..., None, None])
    with torch.autocast("cpu", enabled=False):
        spectrum = torch.fft.rfftn(y, dim=(-2, -1))
        return torch.fft.irfftn(spectrum, s=y.shape[-2:], dim=(-2, -1)).float()


def _pixels(seed: int, side: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).random((side, side, 3), dtype=np.float32)


# --------------------------------------------------------------------------- item 1


def test_fft_layers_fail_under_bfloat16_autocast() -> None:
    """The failure the fallback exists for, reproduced (if torch ever fixes it, fine too)."""
    x = torch.rand(1, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(Exception, match="BFloat16"):
        _fft_forward(torch.nn.Identity(), x, Conditioning())
    np.testing.assert_allclose(_fft_forward(torch.nn.Identity(), x, Conditioning()), x, atol=1e-5)


def test_failure_in_half_precision_is_redone_in_float32_and_remembered() -> None:
    model = _model(_fft_forward)
    module = model.module
    assert isinstance(module, _Halving)
    logs: list[str] = []
    pixels = _pixels(1)
    ctx = RunContext(device="cpu", tile=32, precision="bf16", log=logs.append)
    out, _ = drain(run_model(model, pixels, ctx))
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-5)
    assert module.calls["half"] == 1  # the first tile failed; the others went straight to fp32
    assert module.calls["float32"] == len(tile_grid(48, 48, 32, 8))
    assert any("failed in bfloat16" in line and "float32" in line for line in logs)
    drain(run_model(model, pixels, ctx))
    assert module.calls["half"] == 1  # remembered for the model, across jobs


def test_precision_fp32_never_autocasts() -> None:
    model = _model()
    drain(run_model(model, _pixels(2), RunContext(device="cpu", precision="fp32"), output_bits=8))
    assert isinstance(model.module, _Halving) and model.module.calls["half"] == 0


# --------------------------------------------------------------------------- items 5 and 6


def test_auto_keeps_float32_for_16_bit_and_float_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 9))
    model = _model(supports_half=True)
    assert precision.choose(model, CUDA, "auto", 16) == (None, False)
    assert precision.choose(model, CUDA, "auto", 32) == (None, False)
    assert precision.choose(model, CUDA, "auto", 8) == (torch.float16, True)
    assert precision.choose(model, torch.device("cpu"), "auto", 8) == (None, False)
    assert precision.choose(model, CUDA, "bf16", 16) == (torch.bfloat16, False)  # user's choice


@pytest.mark.parametrize(("capability", "expected"), [((7, 5), None), ((8, 6), torch.bfloat16)])
def test_bfloat16_only_where_the_jobs_card_has_it_natively(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], expected: torch.dtype | None
) -> None:
    asked: list[object] = []

    def capability_of(device: object = None) -> tuple[int, int]:
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    job_device = torch.device("cuda", 1)
    assert precision.auto_half_dtype(_model(), job_device) == expected
    assert asked == [job_device]  # the job's card, not the current one


def test_agreement_decides_and_is_cached_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 9))
    good, poor = _model(supports_half=True), _model(supports_half=True)
    precision.remember_agreement(good, CUDA, torch.float16, 52.0)
    precision.remember_agreement(poor, CUDA, torch.float16, 38.0)
    assert precision.choose(good, CUDA, "auto", 8) == (torch.float16, False)
    assert precision.choose(poor, CUDA, "auto", 8) == (None, False)


def _coarse_in_half(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    y = module(x)
    return torch.round(y * 16) / 16 if torch.is_autocast_enabled("cpu") else y


@pytest.mark.parametrize(("forward", "agrees"), [(None, True), (_coarse_in_half, False)])
def test_agreement_is_measured_once_on_the_first_tile(
    monkeypatch: pytest.MonkeyPatch, forward: Any, agrees: bool
) -> None:
    monkeypatch.setattr(precision, "auto_half_dtype", lambda model, device: torch.bfloat16)
    model = _model(forward)
    module = model.module
    assert isinstance(module, _Halving)
    logs: list[str] = []
    pixels = _pixels(3, 64)
    ctx = RunContext(device="cpu", tile=32, log=logs.append)
    out, _ = drain(run_model(model, pixels, ctx, output_bits=8))
    assert module.calls["float32"] >= 1 and module.calls["half"] >= 1
    if agrees:
        assert any("dB from float32" in line for line in logs)
        np.testing.assert_allclose(out, pixels * 0.5, atol=2e-3)
    else:
        assert any("agrees with float32 to only" in line for line in logs)
        np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)
    calls = dict(module.calls)
    drain(run_model(model, pixels, ctx, output_bits=8))
    new_float32 = module.calls["float32"] - calls["float32"]
    new_half = module.calls["half"] - calls["half"]
    tiles = len(tile_grid(64, 64, 32, 8))
    assert (new_float32, new_half) == ((0, tiles) if agrees else (tiles, 0))  # measured once


@pytest.mark.parametrize(("output_bits", "expected"), [(8, "tf32"), (16, "ieee"), (32, "ieee")])
def test_float32_runs_without_tf32_for_16_bit_and_float_outputs(
    output_bits: int, expected: str
) -> None:
    seen: list[tuple[str, str]] = []

    def spy(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]
        seen.append((conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision))
        return x

    before = torch.backends.cuda.matmul.fp32_precision
    drain(run_model(_model(spy), _pixels(4), RunContext(device="cpu"), output_bits=output_bits))
    assert seen and set(seen) == {(expected, expected)}
    assert torch.backends.cuda.matmul.fp32_precision == before


# --------------------------------------------------------------------------- item 4


@pytest.mark.parametrize("name", sorted(TINY))
def test_float_photo_keeps_its_range_through_every_model(
    tiny_paths: dict[str, Path], name: str, device: str
) -> None:
    """A linear float photo with values up to 5.5 comes back at 5.5x the result for the
    same photo in [0, 1], instead of clipped to 1."""
    task = TINY[name].task
    rng = np.random.default_rng(5)
    pixels = rng.random((40, 48, 3), dtype=np.float32)
    pixels[0, 0] = 1.0
    style = Image(rng.random((32, 32, 3), dtype=np.float32))
    mask = np.zeros((40, 48), np.float32)
    mask[10:20, 10:20] = 1

    def run(scale: float) -> np.ndarray:
        image = Image(pixels * scale, ImageMeta(bit_depth=32))
        inputs = JobInputs((image,), {"style": style, "mask": mask})
        params = {"sigma": 10 * scale} if task == "denoise" else {}
        request = jobs.JobRequest(task=task, inputs=inputs, engine="model", params=params)
        ctx = RunContext(device=device, model_path=tiny_paths[name])
        result, _ = drain(jobs.run_job(build_registry(), request, ctx))
        return np.asarray(result.pixels)

    unit, wide = run(1.0), run(5.5)
    np.testing.assert_allclose(wide, 5.5 * unit, rtol=1e-4, atol=1e-4)


def test_float_values_outside_0_1_are_not_clipped() -> None:
    pixels = _pixels(6) * 5.7 - 0.2
    out, _ = drain(run_model(_model(), pixels, RunContext(device="cpu", tile=32)))
    low = float(pixels.min())  # the model halves (v - low) / span; the result maps back
    np.testing.assert_allclose(out, 0.5 * (pixels - low) + low, atol=1e-5)
    assert out.max() > 2.5


def test_integer_photos_are_not_rescaled() -> None:
    """Noise pushed an 8-bit photo's working values past [0, 1]: the model sees them as they
    are (rescaling would change the noise level it sees)."""
    pixels = _pixels(7) * 1.4 - 0.2
    out, _ = drain(run_model(_model(), pixels, RunContext(device="cpu"), output_bits=8))
    np.testing.assert_allclose(out, np.clip(pixels * 0.5, 0, 1), atol=1e-6)


@pytest.mark.parametrize("task", ["deblur", "inpaint"])
def test_float_photo_keeps_its_range_through_plug_and_play(
    tiny_paths: dict[str, Path], task: str
) -> None:
    rng = np.random.default_rng(8)
    pixels = rng.random((40, 48, 3), dtype=np.float32)
    pixels[0, 0] = 1.0
    mask = np.zeros((40, 48), np.float32)
    mask[10:20, 10:20] = 1

    def run(scale: float) -> np.ndarray:
        image = Image(pixels * scale, ImageMeta(bit_depth=32))
        params = {"noise": 2.55 * scale, "iterations": 2} if task == "deblur" else {}
        inputs = JobInputs((image,), {"mask": mask} if task == "inpaint" else {})
        request = jobs.JobRequest(task=task, inputs=inputs, engine="pnp", params=params)
        ctx = RunContext(device="cpu", model_path=tiny_paths["ffdnet_kair"])
        result, _ = drain(jobs.run_job(build_registry(), request, ctx))
        return np.asarray(result.pixels)

    unit, wide = run(1.0), run(4.0)  # (clipped to 1, `wide` would differ wherever unit > 0.25)
    np.testing.assert_allclose(wide, 4.0 * unit, rtol=1e-4, atol=2e-4)
