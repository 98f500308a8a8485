"""Super-resolution checkpoints through spandrel: `studio run upscale --model` agrees with the
bare network at its own scale, tiled or not, and other scales resize its result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from skimage import data as skdata
from spandrel import ModelLoader

from studio.cli.main import main
from studio.engine.neural.loader import load_model
from tests.helpers import psnr


def _compact() -> torch.nn.Module:
    from spandrel.architectures.Compact import Compact

    return Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)


def _esrgan() -> torch.nn.Module:
    from spandrel.architectures.ESRGAN import ESRGAN

    return ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4)


FAMILIES: dict[str, tuple[Callable[[], torch.nn.Module], int]] = {
    "compact": (_compact, 2),
    "esrgan": (_esrgan, 4),
}


def _checkpoint(folder: Path, family: str) -> Path:
    build, _ = FAMILIES[family]
    torch.manual_seed(7)  # before building: the weights are the same every run
    path = folder / f"{family}.pth"
    torch.save(build().state_dict(), path)
    return path


def _photo(folder: Path) -> tuple[Path, np.ndarray]:
    pixels = skdata.astronaut()[100:196, 180:308]
    path = folder / "photo.png"
    PILImage.fromarray(pixels).save(path)
    return path, pixels.astype(np.float32) / 255


def _bare_model(path: Path, pixels: np.ndarray) -> np.ndarray:
    """The network run by spandrel alone on the whole photo: the reference."""
    descriptor = ModelLoader().load_from_file(path).eval()
    with torch.inference_mode():
        x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        y = descriptor(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return np.rint(y * 255) / 255


def _read(path: Path) -> np.ndarray:
    with PILImage.open(path) as image:
        return np.asarray(image, np.float32) / 255


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("tile", [None, "64"])
def test_model_upscale_agrees_with_the_bare_network(
    tmp_path: Path, family: str, tile: str | None
) -> None:
    model = _checkpoint(tmp_path, family)
    photo, pixels = _photo(tmp_path)
    out = tmp_path / "big.png"
    tiling = ["--tile", tile] if tile else []
    assert main(["run", "upscale", str(photo), "-o", str(out), "--model", str(model), *tiling]) == 0
    result = _read(out)
    scale = FAMILIES[family][1]
    assert result.shape == (96 * scale, 128 * scale, 3)
    assert result.std() > 0.01  # the network produced a picture, not a constant
    assert psnr(result, _bare_model(model, pixels)) >= 40.0


def test_a_different_scale_resizes_the_models_result(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path, "esrgan")
    photo, _ = _photo(tmp_path)
    out = tmp_path / "big.png"
    argv = ["run", "upscale", str(photo), "-o", str(out), "--model", str(model)]
    assert main([*argv, "--param", "scale=2"]) == 0
    assert _read(out).shape == (192, 256, 3)


def test_super_resolution_models_serve_the_upscale_task(tmp_path: Path) -> None:
    loaded = load_model(_checkpoint(tmp_path, "compact"))
    assert loaded.tasks == ("upscale",)
    assert loaded.scale == 2
