"""Inpainting models on crops around each hole; LaMa under bfloat16 through the command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from studio.cli.main import main
from studio.core.image import Image
from studio.core.protocol import JobInputs, RunContext
from studio.core.tiling import Tile
from studio.engine.neural import crops, runner
from studio.engine.neural.model import Conditioning, LoadedModel
from tests.engine.neural.test_run import drain


def _mean_fill(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """Fills the hole with the mean of what the model sees around it: context matters."""
    assert cond.mask is not None
    known = 1 - cond.mask
    mean = (x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
    return x * known + mean * cond.mask


def _inpainter(seen: list[tuple[int, int]]) -> LoadedModel:
    """A LaMa-like model (whole image, mask input) that records the sizes it is given."""

    def forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        seen.append((int(x.shape[-2]), int(x.shape[-1])))
        return _mean_fill(module, x, cond)

    return LoadedModel(architecture="MeanFill", task="inpaint", module=torch.nn.Conv2d(1, 1, 1),
                       in_channels=3, out_channels=3, tiling="discouraged",
                       extras=frozenset({"mask"}), forward=forward)  # fmt: skip


def _photo(height: int, width: int) -> np.ndarray:
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    return np.concatenate([rows * cols, rows + 0 * cols, 1 - cols + 0 * rows], axis=2) / 2


def test_holes_get_crops_with_margin_and_close_ones_share_one() -> None:
    mask = np.zeros((1000, 1200), np.float32)
    mask[100:120, 100:130] = 1
    mask[150:160, 200:210] = 1  # its crop overlaps the first one's
    mask[800:820, 1000:1010] = 1
    assert crops.hole_crops(mask, margin=50) == [Tile(50, 210, 50, 260), Tile(750, 870, 950, 1060)]


def test_small_hole_in_a_big_photo_runs_the_model_on_a_crop_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_seen: list[tuple[int, int]] = []
    model = _inpainter(model_seen)
    monkeypatch.setattr(runner, "get_model", lambda path, ctx: model)
    pixels = _photo(900, 1000)
    mask = np.zeros((900, 1000), np.float32)
    mask[400:420, 500:530] = 1
    inputs = JobInputs((Image(pixels),), {"mask": mask})
    result, _ = drain(runner.run_task("inpaint", Path("m.pth"), inputs, None, RunContext("cpu")))
    out = result.pixels
    assert model_seen == [(20 + 2 * crops.MARGIN, 30 + 2 * crops.MARGIN)]
    y0, y1, x0, x1 = 400 - crops.MARGIN, 420 + crops.MARGIN, 500 - crops.MARGIN, 530 + crops.MARGIN
    crop, hole = pixels[y0:y1, x0:x1], mask[y0:y1, x0:x1, None]
    expected = crop * (1 - hole) + hole * crop[hole[..., 0] < 0.5].mean(axis=0)
    np.testing.assert_allclose(out[y0:y1, x0:x1], expected, atol=1e-4)  # float32 sums
    np.testing.assert_array_equal(out[mask < 0.5], pixels[mask < 0.5])
    whole_image_fill = pixels[mask < 0.5].mean(axis=0)
    assert np.abs(out[410, 515] - whole_image_fill).max() > 0.01  # the crop's context was used


def test_a_large_crop_is_shrunk_to_the_working_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crops, "WORKING_SIZE", 128)
    seen: list[tuple[int, int]] = []
    model = _inpainter(seen)
    pixels = _photo(900, 1000)
    mask = np.zeros((900, 1000), np.float32)
    mask[300:500, 300:500] = 1
    out, _ = drain(crops.inpaint_in_crops(model, pixels, crops.Extras(mask=mask), RunContext(), 8))
    assert seen and max(seen[0]) == 128
    assert out.shape == pixels.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out[:100], pixels[:100])  # outside the crop: untouched


@pytest.mark.slow
def test_lama_under_bfloat16_finishes_and_agrees_with_float32(tmp_path: Path) -> None:
    """`studio run inpaint ... --precision bf16` with a random-weight LaMa saved as a plain
    .pth state dict."""
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    lama = tmp_path / "lama.pth"
    torch.save(LaMa(in_nc=4).state_dict(), lama)
    photo, mask_file = tmp_path / "photo.png", tmp_path / "m.png"
    pixels = np.rint(_photo(96, 112) * 255).astype(np.uint8)
    PILImage.fromarray(pixels).save(photo)
    mask = np.zeros((96, 112), np.uint8)
    mask[30:60, 40:80] = 255
    PILImage.fromarray(mask).save(mask_file)
    results = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.png"
        argv = ["run", "inpaint", str(photo), "--mask", str(mask_file), "--model", str(lama)]
        assert main([*argv, "--device", "cpu", "--precision", precision, "-o", str(out)]) == 0
        results[precision] = np.asarray(PILImage.open(out), dtype=np.float64)
    hole = mask > 0
    error = results["bf16"][hole] - results["fp32"][hole]
    psnr = 10 * np.log10(255**2 / max(float(np.mean(error**2)), 1e-12))
    assert psnr >= 30.0, psnr
    np.testing.assert_array_equal(results["bf16"][~hole], pixels[~hole])
