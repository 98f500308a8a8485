"""Denoise settings as the photographer meets them: every slider position works and nothing
beyond it runs, an empty radius follows the rule its description states, and the window
labels each engine's device from what the engine really asks for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage import data as skdata

from studio.core.errors import BadInputError
from studio.core.image import Image
from studio.core.protocol import JobInputs, Progress, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.registry import build_registry

ENGINES = ("cbm3d", "nlm", "gaussian")
# (engines, setting, lowest, highest, just below, just above): the inspector's slider ends
RANGES = [
    (ENGINES, "sigma", 0.0, 100.0, -0.01, 100.01),
    (ENGINES, "strength", 0.1, 4.0, 0.09, 4.01),
    (("gaussian",), "radius", 0.1, 20.0, 0.09, 20.01),
]


def _noisy(size: int = 24) -> np.ndarray:
    clean = np.asarray(skdata.astronaut()[40 : 40 + size, 160 : 160 + size], np.float32) / 255
    noise = np.random.default_rng(2).normal(0, 25 / 255, clean.shape)
    return np.clip(clean + noise, 0, 1).astype(np.float32)


def _run(engine: str, pixels: np.ndarray, **params: object) -> tuple[list[Progress], Image]:
    request = JobRequest("denoise", JobInputs((Image(pixels),)), engine=engine, params=params)
    job = run_job(build_registry(), request, RunContext(device="cpu"))
    reports = []
    while True:
        try:
            item = next(job)
        except StopIteration as stop:
            return reports, stop.value
        if isinstance(item, Progress):
            reports.append(item)


@pytest.mark.parametrize(("engines", "setting", "low", "high", "below", "above"), RANGES)
def test_every_setting_works_at_both_ends_of_its_slider_and_is_refused_beyond(
    engines: tuple[str, ...], setting: str, low: float, high: float, below: float, above: float
) -> None:
    """The inspector's sliders end where the parameter model does: each end gives a finite
    photo between black and white, a value past it is a clear parameter error, not a run at
    settings nobody measured."""
    noisy = _noisy()
    for engine in engines:
        for value in (low, high):
            result = _run(engine, noisy, **{setting: value})[1].pixels
            assert np.isfinite(result).all() and 0.0 <= result.min() <= result.max() <= 1.0
        for value in (below, above):
            with pytest.raises(BadInputError, match=f"Invalid parameters.*{setting}"):
                _run(engine, noisy, **{setting: value})


@pytest.mark.parametrize(("sigma", "strength"), [(100.0, 1.0), (12.5, 2.0), (0.0, 1.0)])
def test_an_empty_radius_follows_its_description(sigma: float, strength: float) -> None:
    """The radius field says what an empty radius means (0.3 px plus 0.03 px per noise level,
    the level times the strength); a given noise level blurs by exactly that radius, and the
    progress line names it."""
    description = build_registry().get("denoise", "gaussian").params.model_fields["radius"]
    assert "0.3 px plus 0.03 px per noise level" in str(description.description)
    radius = 0.3 + 0.03 * sigma * strength
    noisy = _noisy(48)
    reports, result = _run("gaussian", noisy, sigma=sigma, strength=strength)
    assert f"radius {radius:.2f} px" in reports[1].message
    reference = gaussian_filter(noisy, (radius, radius, 0), mode="reflect", truncate=4.0)
    np.testing.assert_allclose(result.pixels, reference, atol=1e-5)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_window_s_device_label_matches_the_device_the_engine_asks_for(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window labels an engine's device from its declaration: collaborative filtering
    asks for the job's device (the GPU when there is one) and must declare it, or the window
    says CPU while it runs on the GPU; the OpenCV engines ask for none and say CPU."""
    import torch

    from studio.engine.ops import denoise

    asked: list[str | None] = []
    monkeypatch.setattr(
        denoise, "resolve_device", lambda name: asked.append(name) or torch.device("cpu")
    )
    _run(engine, _noisy())
    assert bool(asked) == build_registry().get("denoise", engine).uses_device
    assert bool(asked) == (engine == "cbm3d")
