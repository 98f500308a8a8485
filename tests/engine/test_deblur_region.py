"""The blind deblur engine estimates the blur where the user says: the estimation region it
declares as an input, else the region the effect is limited to, else the busiest window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.cli.main import main
from studio.core.image import Image, ImageMeta
from studio.core.imageio import write_image
from studio.core.protocol import ESTIMATION_REGION, InputForm, JobInputs, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.ops import _deblur_blind_run
from studio.engine.registry import build_registry
from tests.helpers import finish


@pytest.fixture
def estimated_on(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray | None]:
    """The regions the blind engine estimates on (each run then finds no reliable blur)."""
    seen: list[np.ndarray | None] = []

    def estimate_blur(pixels, region, *args):  # type: ignore[no-untyped-def]
        seen.append(region)
        return _deblur_blind_run.BlindEstimate(None, "stand-in")
        yield  # a generator, as the real one

    monkeypatch.setattr(_deblur_blind_run, "estimate_blur", estimate_blur)
    return seen


def _box(top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((64, 80), np.float32)
    mask[top : top + height, left : left + width] = 1
    return mask


PHOTO = Image(np.full((64, 80, 3), 0.5, np.float32), ImageMeta(bit_depth=8))


def test_the_blind_engine_declares_an_optional_estimation_region() -> None:
    spec = build_registry().get("deblur", "blind")
    assert spec.input_of_form(InputForm.REGION) is ESTIMATION_REGION
    assert not any(use.required for use in spec.inputs)


def test_the_estimation_region_given_is_where_the_blur_is_estimated(estimated_on) -> None:  # type: ignore[no-untyped-def]
    drawn, limit = _box(8, 10, 30, 40), _box(0, 0, 64, 40)
    inputs = JobInputs((PHOTO,), {ESTIMATION_REGION.name: drawn})
    request = JobRequest("deblur", inputs, engine="blind", region=limit)
    finish(run_job(build_registry(), request, RunContext(device="cpu")))
    request = JobRequest("deblur", JobInputs((PHOTO,)), engine="blind", region=limit)
    finish(run_job(build_registry(), request, RunContext(device="cpu")))
    finish(run_job(build_registry(), JobRequest("deblur", JobInputs((PHOTO,))), RunContext()))
    np.testing.assert_array_equal(estimated_on[0], drawn)
    np.testing.assert_array_equal(estimated_on[1], limit)
    assert estimated_on[2] is None


def test_the_cli_reads_an_estimation_region_file(estimated_on, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo, region = tmp_path / "photo.png", tmp_path / "region.png"
    write_image(PHOTO, photo)
    write_image(Image(_box(8, 10, 30, 40)[..., None], ImageMeta(bit_depth=8)), region)
    given = ["--input", f"estimation_region={region}"]
    assert main(["run", "deblur", str(photo), "-o", str(tmp_path / "out.png"), *given]) == 0
    np.testing.assert_array_equal(estimated_on[0] > 0.5, _box(8, 10, 30, 40) > 0.5)


def test_a_region_larger_than_the_window_is_searched_for_its_most_detailed_part() -> None:
    """A drawn region wider than the estimation window is not cut to its centre: the window
    goes where the region's detail is (here its right end, beyond the central 768 px)."""
    plane = np.zeros((900, 2000), np.float32)
    plane[:, 1500:1900] = np.random.default_rng(0).random((900, 400))
    region = np.zeros_like(plane)
    region[100:800, 100:1950] = 1
    window = _deblur_blind_run.estimation_window(plane, region)
    assert window.shape == (700, _deblur_blind_run.WINDOW)
    assert float((window != 0).mean()) > 0.4  # the central 768 px hold 9 detailed columns


def test_a_small_region_is_grown_to_the_smallest_window_inside_the_photo() -> None:
    plane = np.arange(200 * 300, dtype=np.float32).reshape(200, 300)
    region = np.zeros_like(plane)
    region[190:200, 295:300] = 1
    window = _deblur_blind_run.estimation_window(plane, region)
    side = 2 * _deblur_blind_run.MIN_SIDE
    np.testing.assert_array_equal(window, plane[200 - side :, 300 - side :])


def test_the_bundled_shaken_sample_estimated_on_a_drawn_region_gets_sharper() -> None:
    """The window's own sample (a 15-px shake at 30 degrees) with the region the screenshots
    draw: the 63-px estimate there is a 49 x 11 px streak that took the photo from 32.2 to
    26.0 dB; the 23-px estimate fits inside its support and gives 32.7 dB."""
    from studio.ui.samples import landscape, motion_blur
    from tests.helpers import psnr

    scene = landscape()
    shaken = np.clip(motion_blur(scene), 0, 1).astype(np.float32)
    region = np.zeros(shaken.shape[:2], np.float32)
    region[160:480, 240:720] = 1.0
    photo = Image(shaken, ImageMeta(bit_depth=8))
    inputs = JobInputs((photo,), {ESTIMATION_REGION.name: region})
    request = JobRequest("deblur", inputs)
    result = finish(run_job(build_registry(), request, RunContext(device="cpu"))).pixels
    inner = np.s_[20:-20, 20:-20]
    assert psnr(result[inner], scene[inner]) > psnr(shaken[inner], scene[inner]) + 0.3
