"""Style engines' settings and reports: the slider ranges, what the working size, stroke
scale and detail settings do, photos outside [0, 1], the default engine, the log and the
progress bar."""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

import cv2
import numpy as np
import pytest

from studio.core.errors import BadInputError
from studio.core.image import Image, ImageMeta, luminance
from studio.core.protocol import JobInputs, Progress, RunContext
from studio.engine.jobs import JobRequest, run_job, validate_params
from studio.engine.ops import _style_color as colour
from studio.engine.ops.style import enlarge
from studio.engine.registry import build_registry
from tests.engine.test_style import _content, _finish, _smooth_field, _style

# (setting, lowest, highest, just below, just above): the inspector's slider ends
RANGES = [
    ("working_size", 64, 2048, 63, 2049),
    ("content_weight", 0.0, 20.0, -0.01, 20.01),
    ("stroke_scale", 0.25, 4.0, 0.24, 4.01),
    ("iterations", 1, 10, 0, 11),
    ("detail", 0.0, 1.0, -0.01, 1.01),
    ("seed", 0, 2**31, -1, None),
]
_QUICK = {"working_size": 64, "iterations": 1}


def _job(
    engine: str | None, content: np.ndarray, style: np.ndarray, log: list[str] | None = None,
    **params: Any,
) -> tuple[Image, list[Progress]]:  # fmt: skip
    inputs = JobInputs((Image(content),), {"style": Image(style)})
    context = RunContext(device="cpu", log=(log if log is not None else []).append)
    return _finish(run_job(build_registry(), JobRequest("style", inputs, engine, params), context))


@pytest.mark.parametrize(("setting", "low", "high", "below", "above"), RANGES)
def test_painterly_settings_are_accepted_to_the_ends_of_their_sliders_only(
    setting: str, low: float, high: float, below: float, above: float | None
) -> None:
    """Each end is a setting the engine takes (painted for real where that is quick: not a
    2048-px or ten-pass painting); a value past either end is a clear parameter error."""
    content, style = _content(48), _style(48)
    spec = build_registry().get("style", "painterly")
    for value in (low, high):
        assert getattr(validate_params(spec, {setting: value}), setting) == value
        if value == high and setting in ("working_size", "iterations"):
            continue
        painted = _job("painterly", content, style, **(_QUICK | {setting: value}))[0].pixels
        assert painted.shape == content.shape and np.isfinite(painted).all(), (setting, value)
    for value in (below, above):
        if value is not None:
            with pytest.raises(BadInputError, match=f"Invalid parameters.*{setting}"):
                _job("painterly", content, style, **(_QUICK | {setting: value}))


def test_the_default_style_engine_paints_and_the_working_size_is_honoured() -> None:
    """With no engine named, the photo is painted (each pass shows a preview, which only
    painterly makes), finishing at the working size asked for: 64 px on the long side for a
    150x120 photo, then enlarged, which the log says; a photo no larger is painted as it is."""
    content = cv2.resize(_content(), (150, 120), interpolation=cv2.INTER_LINEAR)
    log: list[str] = []
    out, steps = _job(None, content, _style(), log, **_QUICK)
    previews = [step.preview for step in steps if step.preview is not None]
    assert previews and previews[-1].shape[:2] == (51, 64)
    assert out.pixels.shape == content.shape
    assert log == ["Painting at 64x51, then enlarging to full size"]
    small: list[str] = []
    _job(None, content[:60, :64], _style(), small, **_QUICK)
    assert not any("enlarging" in line for line in small), small


def test_a_style_image_smaller_than_a_stroke_still_paints() -> None:
    """A style strip 6 px tall, or the smallest stroke scale at the coarse scales, has fewer
    pixels than a stroke: it is enlarged for that stroke size (it was a RuntimeError)."""
    strip = np.ascontiguousarray(_style(200)[:6])
    painted = _job("painterly", _content(96), strip, working_size=96, iterations=1)[0].pixels
    assert painted.shape == (96, 96, 3) and np.isfinite(painted).all()
    assert np.abs(painted.mean(axis=(0, 1)) - strip.mean(axis=(0, 1))).max() < 0.1


def _fine_energy(rgb: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(luminance(rgb), cv2.CV_32F)).mean())


def _stripes(size: int, period: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    wave = 0.5 + 0.5 * np.sin((x + y) * 2 * np.pi / period)
    red, cream = np.array([0.7, 0.1, 0.1]), np.array([0.95, 0.9, 0.75])
    return (red + wave[..., None] * (cream - red)).astype(np.float32)


def test_the_stroke_scale_sets_the_size_of_the_strokes() -> None:
    """The style is taken at `stroke_scale` times the working size: the 16-px stripes of a
    192-px style are 4 px at 0.5, 8 px at 1 and 16 px at 2 in a 96-px painting. Fine
    energy (mean |Laplacian|) measured 0.61, 0.29 and 0.12."""
    style = _stripes(192, 16.0)
    energy = [
        _fine_energy(
            _job("painterly", _content(96), style, **(_QUICK | {"working_size": 96}),
                 stroke_scale=scale)[0].pixels
        )
        for scale in (0.5, 1.0, 2.0)
    ]  # fmt: skip
    assert energy[0] > 1.5 * energy[1] > 2.25 * energy[2], energy


def test_restored_detail_is_the_photos_own_scaled_by_the_setting() -> None:
    """Enlarging adds `detail` times the photo's luminance finer than the painting: the
    result moves towards the photo (luminance error measured 32.7 dB lower at detail 1),
    by half as much at detail 0.5, and stays in [0, 1] where the photo's white lines are."""
    content = _smooth_field((128, 128), 11, [0.5] * 3, 0.05)
    content[::4] = 1.0  # fine white lines, lost at 32 px
    painted = colour.shrink(content, 32)
    plain, half, full = (enlarge(painted, content, d) for d in (0.0, 0.5, 1.0))

    def error(rgb: np.ndarray) -> float:
        return float(np.mean((luminance(rgb) - luminance(content)) ** 2))

    assert 10 * np.log10(error(plain) / error(full)) > 20.0
    added_half, added_full = (luminance(x - plain)[1::4] for x in (half, full))
    np.testing.assert_allclose(added_half, 0.5 * added_full, atol=1e-5)
    assert full.max() <= 1.0 and full.min() >= 0.0


@pytest.mark.parametrize("rows", [16, 1])
@pytest.mark.parametrize("engine", ["painterly", "color_transfer", "histogram"])
def test_a_float_photo_beyond_white_is_styled_as_its_displayable_part(
    engine: str, rows: int
) -> None:
    """A float (EXR) photo with highlights above 1 (in its top third, or only along its top
    edge) is styled as the same photo clipped to [0, 1], as it is shown."""
    content = _smooth_field((48, 48), 12, [0.6, 0.5, 0.4], 0.2)
    bright = content.copy()
    bright[:rows] *= 1.3  # highlights up to about 1.3
    assert bright[rows:].max() <= 1.0 < bright[:rows].max()
    clipped = np.clip(bright, 0.0, 1.0)
    meta = ImageMeta(bit_depth=32)
    params = _QUICK if engine == "painterly" else {}
    results = []
    for pixels in (bright, clipped):
        inputs = JobInputs((Image(pixels, meta),), {"style": Image(_style(48))})
        request = JobRequest("style", inputs, engine, params)
        results.append(_finish(run_job(build_registry(), request, RunContext(device="cpu")))[0])
    np.testing.assert_array_equal(results[0].pixels, results[1].pixels)


@pytest.mark.parametrize("engine", ["painterly", "color_transfer", "histogram"])
def test_the_progress_bar_only_moves_forward(engine: str) -> None:
    params = _QUICK if engine == "painterly" else {}
    steps = _job(engine, _content(48), _style(48), **params)[1]
    fractions = [step.fraction for step in steps]
    assert fractions == sorted(fractions), [(s.done, s.total, s.message) for s in steps]
    assert fractions[0] >= 0.0 and fractions[-1] <= 1.0


def test_on_a_cpu_the_painting_is_made_at_the_size_its_tooltip_says() -> None:
    """With no working size set, a CPU paints at the long side the setting's description
    gives (then enlarges to the photo)."""
    from studio.engine.ops.style import PainterlyParams

    description = PainterlyParams.model_fields["working_size"].description or ""
    said = int(re.search(r"default (\d+) on a CPU", description).group(1))  # type: ignore[union-attr]
    content = cv2.resize(_content(), (600, 450), interpolation=cv2.INTER_LINEAR)
    steps = _job("painterly", content, _style(), iterations=1)[1]
    previews = [step.preview for step in steps if step.preview is not None]
    assert max(previews[-1].shape[:2]) == said


def test_painterly_is_the_style_default_where_engines_are_listed() -> None:
    """The Models panel marks it "(default)" and `studio engines` lists it as the default."""
    registry = build_registry()
    assert [spec.id for spec in registry.engines("style") if spec.default] == ["painterly"]


def test_no_painterly_settings_mean_the_defaults_the_inspector_shows() -> None:
    """Content weight 3, stroke scale 1, 3 passes, detail 0.3 and seed 0 typed in paint the
    same picture as no settings (a 96-px photo painted at 64 px, so the detail is restored)."""
    shown = {"content_weight": 3.0, "stroke_scale": 1.0, "iterations": 3, "detail": 0.3}
    default = _job("painterly", _content(96), _style(96), working_size=64)[0].pixels
    typed = _job("painterly", _content(96), _style(96), working_size=64, seed=0, **shown)
    np.testing.assert_array_equal(default, typed[0].pixels)


@pytest.mark.parametrize("engine", ["color_transfer", "histogram"])
def test_no_colour_settings_change_the_lightness_too_as_the_unticked_box_shows(
    engine: str,
) -> None:
    content, style = _content(48), _style(48)
    default = _job(engine, content, style)[0].pixels
    np.testing.assert_array_equal(
        default, _job(engine, content, style, keep_lightness=False)[0].pixels
    )
    assert not np.array_equal(default, _job(engine, content, style, keep_lightness=True)[0].pixels)


@pytest.mark.parametrize("engine", ["color_transfer", "histogram"])
def test_measuring_the_colours_is_one_step_the_batch_shows_without_a_count(engine: str) -> None:
    """The colours are measured in one step of one (then recoloured tile by tile), so `studio
    batch` shows no count for it that would never complete."""
    steps = _job(engine, _content(48), _style(48))[1]
    assert (steps[0].done, steps[0].total, steps[0].message) == (0, 1, "Measuring colours")


def test_on_a_gpu_the_painting_is_made_at_the_size_its_tooltip_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no working size set, a GPU paints at the long side the setting's description
    gives. No GPU here: the device is said to be CUDA and the painting step returns the
    photo at the size it was asked to paint."""
    import torch

    from studio.engine.ops import style

    description = style.PainterlyParams.model_fields["working_size"].description or ""
    said = int(re.search(r"(\d+) on a GPU", description).group(1))  # type: ignore[union-attr]
    asked: list[tuple[int, int]] = []

    def paint(content: np.ndarray, *_: object) -> Generator[Progress, None, np.ndarray]:
        asked.append(content.shape[:2])
        yield Progress(1, 1, "Painted")
        return content

    monkeypatch.setattr(style, "resolve_device", lambda choice: torch.device("cuda"))
    monkeypatch.setattr(style.synthesis, "synthesize", paint)
    content = cv2.resize(_content(), (1200, 900), interpolation=cv2.INTER_LINEAR)
    _job("painterly", content, _style())
    assert asked == [(said * 3 // 4, said)]


@pytest.mark.parametrize("engine", ["painterly", "color_transfer", "histogram"])
def test_the_window_s_device_label_matches_the_device_the_engine_asks_for(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window labels an engine's device from its declaration: painterly asks for the
    job's device (the GPU when there is one) and must declare it, or the window says CPU
    while it paints on the GPU; the colour engines ask for none and say CPU."""
    import torch

    from studio.engine.ops import style

    asked: list[str] = []
    monkeypatch.setattr(
        style, "resolve_device", lambda name: asked.append(name) or torch.device("cpu")
    )
    _job(engine, _content(48), _style(48), **(_QUICK if engine == "painterly" else {}))
    assert bool(asked) == build_registry().get("style", engine).uses_device
    assert bool(asked) == (engine == "painterly")
