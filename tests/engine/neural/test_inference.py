"""One window through a model (studio/engine/neural/inference.py): the float range a model
sees, padding to the model's size multiple, what a run without extras hands the model, and
how half precision is judged on the first window."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional

from studio.core.protocol import RunContext
from studio.core.tiling import tile_grid
from studio.engine.neural import precision
from studio.engine.neural.executor import run_model
from studio.engine.neural.inference import Extras, ValueRange, _centre_crop
from studio.engine.neural.model import Conditioning, LoadedModel, SizeRequirements
from tests.engine.neural.test_run import drain

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("values", "low", "span"),
    [
        ([0.2, 0.8], 0.0, 1.0),  # within [0, 1]: as it is
        ([-0.5, 0.3, 3.0], -0.5, 3.5),
        ([NAN, 2.0, INF, -INF], 0.0, 2.0),  # only finite values count, even a single one
        ([NAN, NAN], 0.0, 1.0),
    ],
)
def test_value_range_is_0_1_widened_to_the_finite_values(
    values: list[float], low: float, span: float
) -> None:
    assert ValueRange.of(np.array(values, np.float32)) == ValueRange(low, span)


def test_a_run_without_extras_hands_the_model_no_noise_level_and_the_full_style() -> None:
    seen: list[tuple[float, float]] = []

    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        seen.append((cond.sigma, cond.alpha))
        return x

    model = LoadedModel(architecture="Spy", task="denoise", module=torch.nn.Identity(),
                        in_channels=3, out_channels=3, forward=forward)  # fmt: skip
    drain(run_model(model, np.zeros((8, 8, 3), np.float32), RunContext(device="cpu")))
    assert seen == [(0.0, 1.0)]


class _Conv(torch.nn.Module):
    """A seeded 3x3 convolution that refuses sizes off its multiple of 8."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        assert height % 8 == 0 and width % 8 == 0, (height, width)
        self.sizes.append((height, width))
        return torch.sigmoid(self.conv(x))


@pytest.mark.parametrize(
    ("height", "width", "mode", "padded"),
    [
        (40, 44, "reflect", (40, 48)),  # only the width needs padding
        (45, 40, "reflect", (48, 40)),  # only the height
        (47, 40, "reflect", (48, 40)),  # a single row
        (40, 47, "reflect", (40, 48)),
        (20, 21, "reflect", (24, 24)),
        (4, 12, "replicate", (8, 16)),  # 4 rows of padding: a 4-row photo cannot mirror them
        (3, 5, "replicate", (8, 8)),
    ],
)
def test_windows_are_padded_to_the_models_multiple_by_mirroring_where_possible(
    height: int, width: int, mode: str, padded: tuple[int, int]
) -> None:
    module = _Conv()
    model = LoadedModel(architecture="Conv8", task="denoise", module=module, in_channels=3,
                        out_channels=3,
                        size_requirements=SizeRequirements(multiple_of=8))  # fmt: skip
    pixels = np.random.default_rng(2).random((height, width, 3), dtype=np.float32)
    out, _ = drain(run_model(model, pixels, RunContext(device="cpu")))
    assert module.sizes == [padded]
    x = torch.from_numpy(pixels.transpose(2, 0, 1))[None]
    x = functional.pad(x, (0, padded[1] - width, 0, padded[0] - height), mode=mode)
    with torch.no_grad():
        expected = torch.sigmoid(module.conv(x))[0, :, :height, :width].permute(1, 2, 0)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-6)


def test_extras_are_padded_with_the_window_and_stay_aligned() -> None:
    """A mask through a model that needs sizes in multiples of 8: padded at the bottom and
    right like the photo, so each pixel keeps its own mask value."""

    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        assert cond.mask is not None and cond.mask.shape[-2:] == x.shape[-2:] == (48, 40)
        return x * (1 - cond.mask)

    model = LoadedModel(architecture="Masked", task="inpaint", module=torch.nn.Identity(),
                        in_channels=3, out_channels=3, forward=forward,
                        size_requirements=SizeRequirements(multiple_of=8))  # fmt: skip
    pixels = np.ones((45, 37, 3), np.float32)
    mask = np.zeros((45, 37), np.float32)
    mask[::3, ::2] = 1
    out, _ = drain(run_model(model, pixels, RunContext(device="cpu"), Extras(mask=mask)))
    np.testing.assert_array_equal(out[..., 0], 1 - mask)


def test_a_grey_photo_one_pixel_tall_stays_grey_through_a_colour_model() -> None:
    model = LoadedModel(architecture="Colour", task="denoise", module=torch.nn.Identity(),
                        in_channels=3, out_channels=3)  # fmt: skip
    pixels = np.random.default_rng(3).random((1, 9, 1), dtype=np.float32)
    out, _ = drain(run_model(model, pixels, RunContext(device="cpu")))
    np.testing.assert_allclose(out, pixels, atol=1e-6)


def test_the_agreement_probe_is_the_windows_centre_on_the_models_grid() -> None:
    model = LoadedModel(architecture="Grid", task="denoise", module=torch.nn.Identity(),
                        in_channels=3, out_channels=3,
                        size_requirements=SizeRequirements(multiple_of=8))  # fmt: skip
    x = torch.arange(300 * 260, dtype=torch.float32).view(1, 1, 300, 260)
    mask = x + 1
    style = torch.zeros(1, 3, 5, 5)
    cond = Conditioning(sigma=0.1, mask=mask, hints=None, style=style, alpha=0.7)
    crop, cropped = _centre_crop(x, cond, model)
    y0, x0 = (300 - 128) // 2 // 8 * 8, (260 - 128) // 2 // 8 * 8  # 80, 64: on the 8-px grid
    assert torch.equal(crop, x[..., y0 : y0 + 128, x0 : x0 + 128])
    assert cropped.mask is not None and torch.equal(cropped.mask, crop + 1)
    assert cropped.hints is None and cropped.style is style
    assert (cropped.sigma, cropped.alpha) == (0.1, 0.7)
    narrow = x[..., :100, :]
    crop, _ = _centre_crop(narrow, cond, model)
    assert torch.equal(crop, narrow[..., :, x0 : x0 + 128])  # all 100 rows, 128 columns
    small = x[..., 10:100, :128]
    assert torch.equal(_centre_crop(small, cond, model)[0], small)


# --------------------------------------------------------------------------- half precision


class _OneWeight(torch.nn.Module):
    """Holds the weight that places a model on its device; `forward` functions do the work."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(1.0))


def _precision_model(forward: Any) -> LoadedModel:
    return LoadedModel(architecture="Probe", task="denoise", module=_OneWeight(), in_channels=3,
                       out_channels=3, supports_bfloat16=True, forward=forward)  # fmt: skip


def _run_measured(
    model: LoadedModel, monkeypatch: pytest.MonkeyPatch, pixels: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """`model` run as on a GPU that offers bfloat16, so that its agreement is measured."""
    monkeypatch.setattr(precision, "auto_half_dtype", lambda model, device: torch.bfloat16)
    logs: list[str] = []
    if pixels is None:
        pixels = np.random.default_rng(4).random((48, 48, 3), dtype=np.float32)
    ctx = RunContext(device="cpu", log=logs.append)
    out, _ = drain(run_model(model, pixels, ctx, output_bits=8))
    return out, logs


def _differs_in_half(where: str) -> Any:
    """3x - 1 (values from -1 to 2), in half precision 0.3 further from [0, 1] where it is
    "outside" it, or 0.3 off "inside" it."""

    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        y = 3 * x - 1
        if torch.is_autocast_enabled("cpu"):
            if where == "outside":
                y = y + 0.3 * (y > 1) - 0.3 * (y < 0)
            else:
                y = y + 0.3 * ((y >= 0) & (y <= 1))
        return y.float()

    return forward


def test_half_precision_differing_only_where_the_result_is_clipped_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _precision_model(_differs_in_half("outside"))
    _, logs = _run_measured(model, monkeypatch)
    assert any("in bfloat16: inf dB from float32" in line for line in logs), logs
    assert precision.choose(model, torch.device("cpu"), "bf16", 8)[0] == torch.bfloat16


def test_half_precision_differing_inside_the_range_is_dropped_for_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _precision_model(_differs_in_half("inside"))
    out, logs = _run_measured(model, monkeypatch)
    assert any("agrees with float32 to only" in line and "bfloat16" in line for line in logs)
    assert precision.choose(model, torch.device("cpu"), "bf16", 8) == (None, False)
    pixels = np.random.default_rng(4).random((48, 48, 3), dtype=np.float32)
    np.testing.assert_allclose(out, np.clip(3 * pixels - 1, 0, 1), atol=1e-6)


def test_the_float32_reference_of_the_agreement_runs_without_tf32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An 8-bit result may run in TF32, but the reference it is judged against may not."""
    seen: list[tuple[bool, str]] = []

    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        half = torch.is_autocast_enabled("cpu")
        seen.append((half, torch.backends.cuda.matmul.fp32_precision))
        return x

    _run_measured(_precision_model(forward), monkeypatch)
    assert seen[0] == (False, "ieee")


def test_half_precision_failing_on_the_probe_falls_back_to_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError("\"rfftn\" not implemented for 'BFloat16'")
        return x * 0.5

    model = _precision_model(forward)
    pixels = np.random.default_rng(4).random((48, 48, 3), dtype=np.float32)
    out, logs = _run_measured(model, monkeypatch, pixels)
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-6)
    assert any("failed in bfloat16" in line for line in logs)


def test_out_of_memory_in_half_precision_is_not_a_precision_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tile is halved; the model keeps half precision."""

    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        if max(x.shape[-2:]) > 70:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return x * 0.5

    model = dataclasses.replace(_precision_model(forward), supports_bfloat16=True)
    logs: list[str] = []
    pixels = np.random.default_rng(5).random((128, 120, 3), dtype=np.float32)
    ctx = RunContext(device="cpu", precision="bf16", log=logs.append)
    out, _ = drain(run_model(model, pixels, ctx, output_bits=8))
    np.testing.assert_allclose(out, pixels * 0.5, atol=1e-2)
    assert any("retrying with 64px tiles" in line for line in logs)
    assert not any("float32 from now on" in line for line in logs)
    assert precision.choose(model, torch.device("cpu"), "bf16", 8)[0] == torch.bfloat16


def test_agreement_is_measured_on_the_first_tile_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tile runs in half precision once it agrees; only the first also runs in float32
    (its reference), and the agreement is logged once."""
    calls = {"float32": 0, "half": 0}

    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        calls["half" if torch.is_autocast_enabled("cpu") else "float32"] += 1
        return x * 0.5

    monkeypatch.setattr(precision, "auto_half_dtype", lambda model, device: torch.bfloat16)
    logs: list[str] = []
    pixels = np.random.default_rng(6).random((64, 64, 3), dtype=np.float32)
    ctx = RunContext(device="cpu", tile=32, log=logs.append)
    drain(run_model(_precision_model(forward), pixels, ctx, output_bits=8))
    tiles = len(tile_grid(64, 64, 32, 8))  # the executor caps the overlap at a quarter tile
    assert tiles > 2 and calls == {"float32": 1, "half": tiles + 1}  # + the probe's half run
    assert sum("dB from float32" in line for line in logs) == 1
