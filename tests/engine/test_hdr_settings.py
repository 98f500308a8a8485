"""HDR engines' settings and reports: every slider position works and nothing beyond it runs,
the defaults are the neutral or reference settings, the chosen reference bracket is the one
kept, what the log and the progress bar say, and what is written is what was shown."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from studio.core.errors import BadInputError
from studio.core.image import Image, ImageMeta, luminance
from studio.core.imageio import read_image, write_image
from studio.core.protocol import JobInputs, Progress, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.registry import build_registry
from tests.engine.test_hdr import (
    CORNERS,
    TIMES,
    _brackets,
    _expose,
    _moving_square,
    _radiance_image,
    _run,
    _scene,
    _shift,
    _square_error,
)

# (engine, setting, lowest, highest, just below, just above): the inspector's slider ends
RANGES = [
    ("merge", "max_shift", 1, 512, 0, 513),
    ("merge", "ghost_tolerance", 0.051, 4.0, 0.05, 4.01),
    ("fusion", "contrast_weight", 0.0, 10.0, -0.01, 10.01),
    ("fusion", "saturation_weight", 0.0, 10.0, -0.01, 10.01),
    ("fusion", "exposure_weight", 0.0, 10.0, -0.01, 10.01),
    ("tonemap", "exposure", -4.0, 4.0, -4.01, 4.01),
    ("tonemap", "contrast", 1.0, 16.0, 0.99, 16.01),
    ("tonemap", "detail", 0.0, 4.0, -0.01, 4.01),
    ("tonemap", "saturation", 0.0, 2.0, -0.01, 2.01),
    ("tonemap", "intensity", -8.0, 8.0, -8.01, 8.01),
    ("tonemap", "light_adapt", 0.0, 1.0, -0.01, 1.01),
    ("tonemap", "color_adapt", 0.0, 1.0, -0.01, 1.01),
    ("tonemap", "bias", 0.5, 1.0, 0.49, 1.01),
    ("tonemap", "scale", 0.1, 1.0, 0.09, 1.01),
]
_OPERATOR = {"intensity": "reinhard", "light_adapt": "reinhard", "color_adapt": "reinhard"}
_OPERATOR |= {"bias": "drago", "scale": "mantiuk"}


def _small_brackets() -> list[Image]:
    return _brackets(_scene(24, 32), (1 / 8, 1, 8))


def _inputs(engine: str) -> list[Image]:
    return [_radiance_image(_scene(24, 32))] if engine == "tonemap" else _small_brackets()


def _with_operator(setting: str, value: float) -> dict[str, Any]:
    operator = _OPERATOR.get(setting)
    return {setting: value} | ({"operator": operator} if operator else {})


def _params(engine: str, setting: str, value: float) -> dict[str, Any]:
    times = {"times": [1 / 8, 1, 8]} if engine == "merge" else {}
    return times | _with_operator(setting, value)


@pytest.mark.parametrize(("engine", "setting", "low", "high", "below", "above"), RANGES)
def test_every_setting_works_at_both_ends_of_its_slider_and_is_refused_beyond(
    engine: str, setting: str, low: float, high: float, below: float, above: float
) -> None:
    """The inspector's sliders end where the parameter model does: each end gives a finite
    result (a display image in [0, 1] for fusion and tone mapping), a value past it is a
    clear parameter error, not a run at settings nobody measured."""
    for value in (low, high):
        result = _run(engine, _inputs(engine), **_params(engine, setting, value)).pixels
        assert np.isfinite(result).all(), (setting, value)
        if engine != "merge":
            assert result.min() >= 0.0 and result.max() <= 1.0, (setting, value)
    for value in (below, above):
        with pytest.raises(BadInputError, match=f"Invalid parameters.*{setting}"):
            _run(engine, _inputs(engine), **_params(engine, setting, value))


def test_default_fusion_weighs_contrast_saturation_and_exposure_equally() -> None:
    """With no settings, fusion is Mertens et al.'s blend with the three measures weighed
    equally (OpenCV's MergeMertens(1, 1, 1); its own default leaves exposure out)."""
    images = _brackets(_scene(height=75, width=101))[:3]
    fused = _run("fusion", images, align=False).pixels
    mertens = cv2.createMergeMertens(1.0, 1.0, 1.0)
    reference = mertens.process([i.pixels * np.float32(255) for i in images])
    assert np.abs(fused - np.clip(reference, 0.0, 1.0)).max() < 0.1 / 255


def _decoded(display: np.ndarray) -> np.ndarray:
    """sRGB-decoded display pixels (the standard piecewise curve, written out here)."""
    return np.where(display <= 0.04045, display / 12.92, ((display + 0.055) / 1.055) ** 2.4)


@pytest.mark.parametrize(
    ("operator", "opencv"),
    [
        ("reinhard", cv2.createTonemapReinhard(1.0, 0.0, 0.0, 0.0)),
        ("drago", cv2.createTonemapDrago(1.0, 1.0, 0.85)),
    ],
)
def test_default_global_tone_maps_are_the_published_operators(
    operator: str, opencv: cv2.Tonemap
) -> None:
    """Reinhard with no settings is the global photographic operator (intensity 0, no light
    or colour adaptation); Drago is the paper's recommended bias 0.85, saturation 1. The
    display step only sets levels: decoded, the result is a straight line of OpenCV's
    operator (correlation measured 1.00000 on both; with Drago's bias at 1.0, 0.9964; with
    Reinhard's light adaptation at 1, 0.969)."""
    radiance = _scene(48, 64, seed=5)
    shown = _run("tonemap", [_radiance_image(radiance)], operator=operator).pixels
    mapped = np.asarray(opencv.process(np.ascontiguousarray(radiance[..., ::-1])))[..., ::-1]
    inside = (shown > 0.01) & (shown < 0.99)
    fit = np.corrcoef(_decoded(shown)[inside], mapped[inside])[0, 1]
    assert fit > 0.9995


def test_default_mantiuk_is_opencvs_contrast_mapping_at_its_own_scale() -> None:
    """Mantiuk with no settings is OpenCV's operator at its default contrast scale (0.7) on
    the luminance, fitted to the display with one power curve: decoded, its log luminance
    is a straight line of OpenCV's (correlation measured 0.99986; at scale 0.6 0.99856,
    at 1.0 0.99895)."""
    radiance = _scene(48, 64, seed=6)
    shown = _run("tonemap", [_radiance_image(radiance)], operator="mantiuk").pixels
    grey = np.repeat(np.maximum(luminance(radiance), 1e-6)[..., None], 3, axis=2)
    mapped = cv2.createTonemapMantiuk().process(np.ascontiguousarray(grey))[..., 0]
    light = luminance(_decoded(shown))
    inside = (light > 0.02) & (light < 0.98)
    assert np.corrcoef(np.log(light[inside]), np.log(mapped[inside]))[0, 1] > 0.9995


def test_default_mantiuk_and_local_keep_the_photo_exposure_and_colour() -> None:
    """Exposure 0 and saturation 1 leave brightness and colour as the operator makes them."""
    image = [_radiance_image(_scene(48, 64, seed=6))]
    for operator in ("mantiuk", "local"):
        neutral = _run("tonemap", image, operator=operator, exposure=0.0, saturation=1.0)
        plain = _run("tonemap", image, operator=operator)
        np.testing.assert_array_equal(plain.pixels, neutral.pixels)


def test_the_chosen_reference_bracket_keeps_its_own_moving_square_first_to_last() -> None:
    """Reference brackets count from 1 (the first input) to the number of inputs. Three
    brackets of a 4-stop scene (none clipped), a square moving between shots: the merge
    keeps the square only where the chosen bracket has it. Errors measured 0.05 stop or
    less; merged without ghost suppression, 0.35 to 2.6."""
    truth = _scene(stops=4.0)
    rng = np.random.default_rng(2)
    times = (1 / 16, 1 / 8, 1 / 4)
    images = [
        _expose(_moving_square(truth, c), t, rng) for c, t in zip(CORNERS[:3], times, strict=True)
    ]
    for reference in (1, 3):
        kept = _moving_square(truth, CORNERS[reference - 1])
        merged = _run("merge", images, times=list(times), reference=reference).pixels
        for corner in CORNERS[:3]:
            assert _square_error(merged, kept, corner) < 0.15, (reference, corner)
    with pytest.raises(BadInputError, match="Reference bracket 4 does not exist: there are 3"):
        _run("merge", images, times=list(times), reference=4)


def test_a_one_pixel_shake_is_found_with_the_smallest_search() -> None:
    truth = _scene(64, 80)
    images = _brackets(truth)
    images[0] = _shift(images[0], 1, -1)
    log: list[str] = []
    _logged_run("fusion", images, log, max_shift=1)
    assert any("(-1, 1)" in line for line in log), log


def _logged_run(engine: str, images: list[Image], log: list[str], **params: Any) -> Image:
    request = JobRequest("hdr", JobInputs(tuple(images)), engine, params)
    gen = run_job(build_registry(), request, RunContext(log=log.append))
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def test_the_log_names_the_shifts_found_and_the_times_used() -> None:
    images = _brackets(_scene(128, 160))
    tagged = [
        dataclasses.replace(im, meta=ImageMeta(exposure_time=t))
        for im, t in zip(images, TIMES, strict=True)
    ]
    steady: list[str] = []
    _logged_run("merge", tagged, steady)
    assert not any("Alignment" in line or "times given" in line for line in steady), steady
    given: list[str] = []
    _logged_run("merge", tagged, given, times=list(TIMES))
    assert any("Using the exposure times given, not those in EXIF" in line for line in given)
    shaken: list[str] = []
    _logged_run("merge", [_shift(images[0], 3, 0), *images[1:]], shaken, times=list(TIMES))
    prefix = "Alignment shifts (dy, dx): "
    assert any(line.startswith(prefix + "(-") for line in shaken), shaken


def _progress(engine: str, images: list[Image], **params: Any) -> list[Progress]:
    request = JobRequest("hdr", JobInputs(tuple(images)), engine, params)
    gen = run_job(build_registry(), request, RunContext())
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration:
            return steps


@pytest.mark.parametrize(
    ("engine", "params"),
    [("merge", {"times": [1 / 8, 1, 8]}), ("fusion", {}), ("tonemap", {})],
)
def test_the_progress_bar_only_moves_forward_and_ends_full(
    engine: str, params: dict[str, Any]
) -> None:
    steps = _progress(engine, _inputs(engine), **params)
    fractions = [step.fraction for step in steps]
    assert fractions == sorted(fractions), [(s.done, s.total, s.message) for s in steps]
    assert fractions[0] >= 0.0 and fractions[-1] == 1.0


def test_grey_radiance_tone_maps_to_a_grey_photo() -> None:
    radiance = _scene(24, 32)[..., 1:2]
    result = _run("tonemap", [_radiance_image(radiance)])
    assert result.channels == 1
    rank = np.corrcoef(luminance(result.pixels).ravel(), np.log(radiance).ravel())[0, 1]
    assert rank > 0.9


def test_an_8_bit_photo_is_tone_mapped_as_the_light_it_encodes() -> None:
    """An sRGB photo of a scene and the same scene as a radiance image (within [0, 1]) tone
    map alike: the photo is linearised first (mean difference measured 0.0016; tone mapping
    the encoded values as if they were light differs by 0.11)."""
    radiance = np.clip(_scene(48, 64, stops=6.0) / 4.0, 0.0, 1.0)
    encoded = np.where(
        radiance <= 0.0031308, radiance * 12.92, 1.055 * radiance ** (1 / 2.4) - 0.055
    )
    photo = Image((np.rint(encoded * 255) / 255).astype(np.float32), ImageMeta(bit_depth=8))
    from_photo = _run("tonemap", [photo]).pixels
    from_radiance = _run("tonemap", [_radiance_image(radiance)]).pixels
    assert np.abs(from_photo - from_radiance).mean() < 0.01


@pytest.mark.parametrize("engine", ["fusion", "tonemap"])
def test_the_display_result_is_written_as_it_is_shown(engine: str, tmp_path: Path) -> None:
    """Fused and tone-mapped results are display images: a 16-bit TIFF of them reads back
    the same pixels (not sRGB-encoded a second time as a linear camera RAW would be)."""
    result = _run(engine, _inputs(engine))
    assert result.meta.bit_depth == 16
    path = write_image(result, tmp_path / "result.tif")
    assert np.abs(read_image(path).pixels - result.pixels).max() < 1e-4


def test_fusion_is_the_hdr_default_where_engines_are_listed() -> None:
    """The Models panel marks it "(default)" and `studio engines` lists it as the default."""
    registry = build_registry()
    assert [spec.id for spec in registry.engines("hdr") if spec.default] == ["fusion"]
