"""Deblur engines' settings: every slider works at both of its ends and nothing beyond them
runs, the defaults (engine, noise level, smoothing) are the ones the window shows and the
tooltips describe."""

from __future__ import annotations

import re

import numpy as np
import pytest
from skimage import data as skdata

from studio.core.errors import BadInputError
from studio.core.image import Image
from studio.core.protocol import JobInputs, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.ops.deblur import BlindParams
from studio.engine.psf import motion_psf
from studio.engine.registry import build_registry
from tests.engine.test_deblur import blur, run
from tests.helpers import finish, psnr

_SHAKE = {"psf": "motion", "length": 7, "angle": 30}
# (engine, setting, lowest, highest, just below, just above, other settings): the inspector's
# slider ends
RANGES = [
    ("hyper_laplacian", "noise", 0.0, 50.0, -0.01, 50.01, _SHAKE),
    ("richardson_lucy", "noise", 0.0, 50.0, -0.01, 50.01, _SHAKE),
    ("wiener", "smoothing", 0.1, 20.0, 0.09, 20.01, _SHAKE),
    ("richardson_lucy", "iterations", 1, 500, 0, 501, _SHAKE),
    ("blind", "max_size", 3, 101, 2, 102, {}),
    ("auto", "max_size", 3, 101, 2, 102, {}),
]


@pytest.fixture(scope="module")
def shaken() -> np.ndarray:
    sharp = np.asarray(skdata.astronaut()[40:136, 160:256], np.float32) / 255
    return np.clip(blur(sharp, motion_psf(7, 30))[1], 0.0, 1.0)


@pytest.mark.parametrize(("engine", "setting", "low", "high", "below", "above", "more"), RANGES)
def test_every_setting_works_at_both_ends_of_its_slider_and_is_refused_beyond(
    engine: str,
    setting: str,
    low: float,
    high: float,
    below: float,
    above: float,
    more: dict[str, object],
    shaken: np.ndarray,
) -> None:
    """The inspector's sliders end where the parameter model does: a value past either end
    is a clear parameter error, not a run at settings nobody measured, and each end deblurs
    the photo to a finite 8-bit result (the blur searches on a 64-px crop, which the blind
    estimate still searches, to keep the largest search quick)."""
    photo = shaken[:64, :64] if setting == "max_size" else shaken
    for value in (below, above):
        refused = f"Invalid parameters for deblur/{engine}.*{setting}"
        with pytest.raises(BadInputError, match=refused):
            run(engine, photo, **more, **{setting: value})
    for value in (low, high):
        result = run(engine, photo, **more, **{setting: value})
        assert result.shape == photo.shape, (setting, value)
        assert np.isfinite(result).all() and 0.0 <= result.min() <= result.max() <= 1.0


def test_blind_shake_removal_is_the_deblur_default_where_engines_are_listed() -> None:
    """The Models panel marks it "(default)" and `studio engines` lists it as the default."""
    registry = build_registry()
    assert [spec.id for spec in registry.engines("deblur") if spec.default] == ["blind"]


def test_an_empty_noise_level_is_at_least_the_share_of_white_its_tooltip_says() -> None:
    """A clean photo (a render, or one denoised already) estimates almost no noise, which
    would let the deconvolution amplify its kernel error into ringing: leaving the level
    empty then deblurs as if the tooltip's share of white were typed (2.55 for 1 %; 1.5 %
    changes pixels by up to 0.066, measured)."""
    description = BlindParams.model_fields["noise"].description or ""
    share = float(re.search(r"at least ([\d.]+) % of white", description).group(1))  # type: ignore[union-attr]
    sharp = np.asarray(skdata.astronaut()[40:136, 160:256], np.float32) / 255
    clean = blur(sharp, motion_psf(7, 30), noise=0.0)[1]
    estimated = run("wiener", clean, **_SHAKE)
    np.testing.assert_array_equal(run("wiener", clean, noise=share * 2.55, **_SHAKE), estimated)


def test_a_float_photo_deblurs_the_same_whatever_its_exposure() -> None:
    """A scene-linear float photo four times brighter (highlights up to 4) deblurs to four
    times the result: its noise floor follows its own white. Measured 58.9 dB apart; with a
    floor that shrank as the photo brightens, 16 dB."""
    sharp = np.asarray(skdata.astronaut()[40:136, 160:256], np.float32) / 255
    clean = blur(sharp, motion_psf(7, 30), noise=0.0)[1]
    once = run("wiener", clean, bit_depth=32, **_SHAKE)
    four = run("wiener", 4 * clean, bit_depth=32, **_SHAKE)
    assert psnr(four / 4, once) > 50.0


def test_smoothing_scales_the_noise_level_from_a_neutral_default(shaken: np.ndarray) -> None:
    """Richardson-Lucy stops once its estimate fits the photo to within noise x smoothing:
    noise 1.5 smoothed 2x stops where noise 3 at the default smoothing does, so the default
    leaves the level typed as it is (a default of 1.5 changes pixels by up to 0.061)."""
    doubled = run("richardson_lucy", shaken, noise=1.5, smoothing=2.0, **_SHAKE)
    np.testing.assert_array_equal(run("richardson_lucy", shaken, noise=3.0, **_SHAKE), doubled)


def _roughness(pixels: np.ndarray) -> float:
    return float(np.abs(np.diff(pixels, axis=0)).mean() + np.abs(np.diff(pixels, axis=1)).mean())


def test_auto_removes_the_blur_it_found_more_gently_than_the_same_blur_given() -> None:
    """A blur found by the search may be slightly off, so it is deconvolved with more
    smoothing than the same blur typed in: less noise and ringing (mean absolute gradient
    measured 0.039 against 0.045; with less smoothing than typed in it would be 0.055)."""
    sharp = np.asarray(skdata.astronaut()[20:180, 150:310], np.float32) / 255
    _, shaken = blur(sharp, motion_psf(11, 60))
    lines: list[str] = []
    request = JobRequest("deblur", JobInputs((Image(shaken),)), engine="auto")
    found = finish(run_job(build_registry(), request, RunContext(device="cpu", log=lines.append)))
    match = re.search(r"Estimated blur: motion length (\d+) angle (\d+)", " ".join(lines))
    assert match, lines
    given = {"psf": "motion", "length": int(match.group(1)), "angle": int(match.group(2))}
    assert _roughness(found.pixels) < 0.95 * _roughness(run("hyper_laplacian", shaken, **given))
