"""What the window's progress bar and the CLI's show while a built-in engine runs.

Every step of an engine's run counts up from nothing done to at most its total, reporting each
unit it counts, and the last one ends complete; a parameter the user typed is named in the
first step instead of "Estimating".
"""

from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from studio.core.image import Image
from studio.core.protocol import JobInputs, Progress, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.psf import motion_psf
from studio.engine.registry import build_registry

REGISTRY = build_registry()
ENGINES = [
    *(("denoise", e) for e in ("cbm3d", "nlm", "gaussian")),
    *(("deblur", e) for e in ("blind", "hyper_laplacian", "wiener", "richardson_lucy", "auto")),
    ("deblur (shaken)", "blind"),  # a kernel is found: estimation, then deconvolution
    ("deblur (shaken)", "auto"),
    *(("inpaint", e) for e in ("patchmatch", "telea", "navier_stokes")),
    *(("upscale", e) for e in ("detail", "lanczos")),
]


def _reports(task: str, engine: str | None = None, **params: object) -> list[Progress]:
    pixels = np.asarray(skdata.astronaut()[40:104, 160:224], np.float32) / 255
    if task == "deblur (shaken)":
        task, pixels = "deblur", _shaken()
        params = {"max_size": 15} if engine == "blind" else params
    mask = np.zeros(pixels.shape[:2], np.float32)
    mask[20:30, 24:36] = 1.0
    inputs = JobInputs((Image(pixels),), {"mask": mask} if task == "inpaint" else {})
    request = JobRequest(task, inputs, engine=engine, params=params)
    job = run_job(REGISTRY, request, RunContext(device="cpu", tile=32))
    return [item for item in job if isinstance(item, Progress)]


def _shaken() -> np.ndarray:
    """A 144-px crop shaken by 11 px, in which both estimators find a blur (the blind one
    found none in a 104-px crop)."""
    sharp = np.asarray(skdata.astronaut()[20:180, 150:310], np.float32) / 255
    kernel = motion_psf(11, 60)
    planes = [cv2.filter2D(sharp[..., c], -1, kernel) for c in range(3)]
    return np.stack(planes, axis=-1)[8:-8, 8:-8].copy()


@pytest.mark.parametrize(("task", "engine"), ENGINES)
def test_progress_counts_each_step_from_zero_to_complete(task: str, engine: str) -> None:
    """A run is one or more steps (estimating, then deblurring tile by tile...): each step
    counts up from zero within its total, or is one complete report ("no blur found"), and
    the last one ends complete. A step's count is honest: the bar is not full while the
    same step still works, a step moves on only from its last part (its "0/2" would
    announce a part that never comes), and a full bar before the end closes the work it
    was showing, never announces new work (as a full "Estimated blur kernel" would)."""
    reports = _reports(task, engine)
    assert reports[0].done == 0
    for report in reports:
        assert 0 <= report.done <= report.total, report
    for before, after in pairwise(reports):
        if after.total != before.total or after.done < before.done:  # a new step:
            assert after.done in (0, after.total), (before, after)  # from zero, or one-shot
            assert before.done >= before.total - 1, (before, after)
        else:
            assert before.done < before.total, (before, after)
        if after.done == after.total and after is not reports[-1]:
            assert after.message == before.message, (before, after)
    assert reports[-1].done == reports[-1].total
    if task == "deblur (shaken)":  # a blur was found and removed
        assert reports[-1].message.startswith("Deblurring"), reports[-1]


@pytest.mark.parametrize(
    ("task", "engine", "params", "first"),
    [
        ("denoise", "cbm3d", {}, "Estimating noise"),
        ("denoise", "nlm", {"sigma": 12.5}, "Noise level 12.5 (given)"),
        ("denoise", "gaussian", {}, "Estimating noise"),
        ("denoise", "gaussian", {"sigma": 20.0}, "Noise level 20 (given)"),
        ("denoise", "gaussian", {"radius": 2.0}, "Radius 2 px (given)"),
        ("deblur", "wiener", {"psf": "defocus", "radius": 2.0}, "Estimating noise"),
        ("deblur", "wiener", {"psf": "defocus", "radius": 2.0, "noise": 3.0}, "Noise level 3"),
    ],
)
def test_the_first_step_names_what_the_user_gave(
    task: str, engine: str, params: dict[str, object], first: str
) -> None:
    assert _reports(task, engine, **params)[0].message.startswith(first)
