"""Tiny seeded networks run through the studio agree with an independent computation of the same
weights: a plain torch.nn.functional layer stack, or spandrel's own loader. A wrong noise map,
a wrong normalisation, a channel swap or tiles without overlap fail every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata
from torch.nn import functional

from studio.core.image import Image
from studio.core.protocol import JobInputs, RunContext
from studio.engine import jobs
from studio.engine.registry import build_registry
from tests.engine.neural._tiny import TINY, State, save
from tests.helpers import finish, psnr

SIGMA = 20.0


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 96x112 colour crop: smooth and textured areas, so outputs are not all clipped."""
    return np.asarray(skdata.astronaut()[40:136, 150:262], np.float32) / 255


def _studio(
    path: Path, task: str, pixels: np.ndarray, tile: int | None = None, **params: object
) -> np.ndarray:
    request = jobs.JobRequest(task, JobInputs((Image(pixels),)), engine="model", params=params)
    ctx = RunContext(device="cpu", model_path=path, tile=tile)
    return finish(jobs.run_job(build_registry(), request, ctx)).pixels


def _nchw(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None]


def _hwc(tensor: torch.Tensor) -> np.ndarray:
    return np.clip(tensor[0].permute(1, 2, 0).detach().numpy(), 0.0, 1.0)


def _kair_ffdnet_by_hand(state: State, pixels: np.ndarray, sigma: float) -> np.ndarray:
    """KAIR's FFDNet written out: pixel-unshuffle, a noise-level map of sigma/255 appended,
    3x3 convs with ReLU between them, pixel-shuffle."""
    x = functional.pixel_unshuffle(_nchw(pixels), 2)
    level = torch.full((1, 1, *x.shape[-2:]), sigma / 255.0)
    x = torch.cat((x, level), 1)
    convs = sorted({int(k.split(".")[1]) for k in state if k.startswith("model.")})
    for i in convs:
        x = functional.conv2d(x, state[f"model.{i}.weight"], state[f"model.{i}.bias"], padding=1)
        x = functional.relu(x) if i != convs[-1] else x
    return _hwc(functional.pixel_shuffle(x, 2))


def _by_spandrel(state: State, pixels: np.ndarray) -> np.ndarray:
    from spandrel import ModelLoader

    model = ModelLoader().load_from_state_dict(state).model.eval()
    with torch.no_grad():
        return _hwc(model(_nchw(pixels)))


@pytest.fixture(scope="module")
def ffdnet(tmp_path_factory: pytest.TempPathFactory) -> tuple[State, Path]:
    state = TINY["ffdnet_kair"].build()
    state["model.6.bias"] += 0.5  # centre its outputs in [0, 1]: none lost to clipping
    return state, save(state, tmp_path_factory.mktemp("ffdnet"), "ffdnet", "safetensors")


def test_ffdnet_matches_its_layer_stack_written_out(
    ffdnet: tuple[State, Path], photo: np.ndarray
) -> None:
    state, path = ffdnet
    expected = _kair_ffdnet_by_hand(state, photo, SIGMA)
    assert expected.min() > 0.0 and expected.max() < 1.0, "nothing may hide in clipping"
    result = _studio(path, "denoise", photo, sigma=SIGMA)
    np.testing.assert_allclose(result, expected, atol=2e-5)
    elsewhere = _kair_ffdnet_by_hand(state, photo, 4 * SIGMA)
    assert np.abs(elsewhere - expected).max() > 1e-3, "the noise level must matter"


def test_tiles_match_the_whole_photo_written_out(
    ffdnet: tuple[State, Path], photo: np.ndarray
) -> None:
    """48 px tiles (12 px overlap) of a network that sees 8 px around each pixel."""
    state, path = ffdnet
    tiled = _studio(path, "denoise", photo, tile=48, sigma=SIGMA)
    assert psnr(tiled, _kair_ffdnet_by_hand(state, photo, SIGMA)) > 60


@pytest.mark.parametrize(("name", "channels"), [("spandrel_dncnn", 1), ("spandrel_nafnet", 3)])
def test_spandrel_models_match_spandrel_itself(
    name: str, channels: int, photo: np.ndarray, tmp_path: Path
) -> None:
    state = TINY[name].build()
    pixels = np.ascontiguousarray(photo[..., :channels])
    expected = _by_spandrel(state, pixels)
    assert np.std(expected) > 0.05
    result = _studio(save(state, tmp_path, name, "safetensors"), TINY[name].task, pixels)
    np.testing.assert_allclose(result, expected, atol=2e-5)
