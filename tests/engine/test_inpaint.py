"""Built-in inpainting: masks are checked, diffusion fills scratches, PatchMatch keeps texture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data, transform

from studio.core.errors import BadInputError, MissingInputError
from studio.core.image import Image
from studio.core.protocol import JobInputs, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.registry import build_registry

REGISTRY = build_registry()


def _photo(name: str, size: int = 160) -> np.ndarray:
    pixels = transform.resize(getattr(data, name)(), (size, size), anti_aliasing=True)
    return np.asarray(pixels, dtype=np.float32)


def _box_mask(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[top : top + side, left : left + side] = 1.0
    return mask


def _inpaint(engine: str, pixels: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The engine's result on `pixels` with the hole blanked first, as a damaged photo would
    be: an engine that returns its input then scores no better than the blank."""
    if mask is not None and mask.shape == pixels.shape[:2]:
        pixels = np.where(mask[..., None] > 0.5, np.float32(0.5), pixels).astype(np.float32)
    inputs = JobInputs((Image(pixels),), {} if mask is None else {"mask": mask})
    job = run_job(REGISTRY, JobRequest("inpaint", inputs, engine=engine), RunContext())
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return np.asarray(stop.value.pixels)


def _hole_psnr(result: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / ((result - truth)[hole] ** 2).mean()))


def _laplacian_rms(pixels: np.ndarray, hole: np.ndarray) -> float:
    laplacian = cv2.Laplacian(pixels.mean(axis=2), cv2.CV_32F)
    return float(np.sqrt((laplacian[hole] ** 2).mean()))


@pytest.mark.parametrize("engine", ["patchmatch", "telea", "navier_stokes"])
def test_missing_or_mismatched_mask_is_a_clear_error(engine: str) -> None:
    pixels = _photo("coffee", 32)
    with pytest.raises(MissingInputError, match="--mask FILE"):
        _inpaint(engine, pixels, None)
    with pytest.raises(BadInputError, match="Mask is 20x30 but the image is 32x32"):
        _inpaint(engine, pixels, np.zeros((30, 20), np.float32))


@pytest.mark.parametrize("engine", ["patchmatch", "telea", "navier_stokes"])
def test_only_the_hole_changes(engine: str) -> None:
    pixels = _photo("chelsea", 96)
    mask = _box_mask(96, 40, 30, 12)
    result = _inpaint(engine, pixels, mask)
    hole = mask > 0.5
    np.testing.assert_array_equal(result[~hole], pixels[~hole])
    assert np.abs(result[hole] - pixels[hole]).mean() < 0.2


def test_diffusion_fills_a_scratch_on_a_smooth_gradient() -> None:
    ramp = np.linspace(0.2, 0.8, 128, dtype=np.float32)
    pixels = np.repeat(np.tile(ramp, (128, 1))[..., None], 3, axis=2)
    mask = np.zeros((128, 128), np.float32)
    mask[60:63, 10:118] = 1.0
    for engine in ("telea", "navier_stokes"):
        assert _hole_psnr(_inpaint(engine, pixels, mask), pixels, mask > 0.5) > 35.0


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_patchmatch_is_textured_and_close_to_telea_inside_the_hole(name: str) -> None:
    pixels = _photo(name)
    mask = _box_mask(160, 60, 50, 32)  # 4 % of the image
    hole = mask > 0.5
    telea, exemplar = (_inpaint(e, pixels, mask) for e in ("telea", "patchmatch"))
    assert _hole_psnr(exemplar, pixels, hole) > _hole_psnr(telea, pixels, hole) - 1.0
    truth_energy = _laplacian_rms(pixels, hole)
    assert _laplacian_rms(exemplar, hole) >= 0.5 * truth_energy
    assert _laplacian_rms(telea, hole) < 0.5 * truth_energy  # the smearing it is measured against


def test_patchmatch_is_repeatable_and_cancellable() -> None:
    pixels, mask = _photo("coffee", 96), _box_mask(96, 30, 30, 16)
    np.testing.assert_array_equal(
        _inpaint("patchmatch", pixels, mask), _inpaint("patchmatch", pixels, mask)
    )
    inputs = JobInputs((Image(pixels),), {"mask": mask})
    steps = list(run_job(REGISTRY, JobRequest("inpaint", inputs), RunContext()))
    assert len(steps) >= 4, "a cancel can only land between progress reports"
    job = run_job(REGISTRY, JobRequest("inpaint", inputs), RunContext())
    first = next(job)
    job.close()  # what the worker does on Cancel: no further step runs, no result comes
    assert first == steps[0] and job.gi_frame is None
    with pytest.raises(StopIteration):
        next(job)
