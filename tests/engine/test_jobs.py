"""The job runner: parameter validation, availability, generic opacity and region, bad results."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from pydantic import Field

from studio.core.errors import (
    BadInputError,
    EngineUnavailableError,
    MissingInputError,
    StudioError,
    UsageError,
)
from studio.core.image import Image, ImageMeta
from studio.core.protocol import (
    Availability,
    EngineSpec,
    JobInputs,
    OpRun,
    Params,
    Progress,
    RunContext,
)
from studio.core.registry import Registry
from studio.core.stored import StoredImage
from studio.engine.jobs import JobRequest, check_inputs, run_job
from studio.engine.registry import build_registry
from tests.helpers import finish


class ShiftParams(Params):
    amount: float = Field(0.5, ge=0.0, le=1.0, description="Added to every pixel")


def _shift(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
    yield Progress(0, 1, "shifting")
    return inputs.image.with_pixels(inputs.image.pixels + params.amount)


def _nan(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
    yield Progress(0, 1, "breaking")
    return inputs.image.with_pixels(np.full_like(inputs.image.pixels, np.nan))


def _identity(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
    yield Progress(0, 1, "keeping")
    return inputs.image


def _registry(**overrides: object) -> Registry:
    spec = EngineSpec(task="denoise", id="shift", name="Shift", params=ShiftParams, run=_shift)
    return Registry([EngineSpec(**{**spec.__dict__, **overrides})])  # type: ignore[arg-type]


def _image(value: float = 0.25) -> Image:
    return Image(np.full((4, 6, 3), value, dtype=np.float32))


def _request(**kwargs: object) -> JobRequest:
    return JobRequest(task="denoise", inputs=JobInputs((_image(),)), **kwargs)  # type: ignore[arg-type]


def test_params_reach_the_engine_and_history_records_them() -> None:
    result = finish(run_job(_registry(), _request(params={"amount": "0.5"}), RunContext()))
    np.testing.assert_allclose(result.pixels, 0.75)
    assert result.meta.history == ('denoise/shift {"amount": 0.5}',)


def test_the_recorded_step_does_not_depend_on_the_order_parameters_are_declared_in() -> None:
    """The step in a written file's Software field is a canonical record: the same settings
    read the same whichever order an engine (or a later Studio) declares its parameters in."""

    class RadiusFirst(Params):
        radius: float = 1.0
        strength: float = 0.5

    class StrengthFirst(Params):
        strength: float = 0.5
        radius: float = 1.0

    settings = {"strength": 0.25, "radius": 2.0}
    steps = []
    for params in (RadiusFirst, StrengthFirst):
        request = _request(params=settings)
        result = finish(run_job(_registry(params=params, run=_identity), request, RunContext()))
        steps.append(result.meta.history[-1])
    assert steps[0] == steps[1]
    assert json.loads(steps[0].partition(" ")[2]) == settings


def test_invalid_params_are_one_clear_line() -> None:
    with pytest.raises(BadInputError, match=r"amount: Input should be less than or equal to 1"):
        finish(run_job(_registry(), _request(params={"amount": 3}), RunContext()))
    with pytest.raises(BadInputError, match="colour: Extra inputs are not permitted"):
        finish(run_job(_registry(), _request(params={"colour": 1}), RunContext()))


def test_unavailable_engine_says_why() -> None:
    registry = _registry(available=lambda ctx: Availability(False, "needs a model file"))
    with pytest.raises(EngineUnavailableError, match="needs a model file"):
        finish(run_job(registry, _request(), RunContext()))


def test_opacity_blends_result_over_original() -> None:
    result = finish(run_job(_registry(), _request(opacity=0.25), RunContext()))
    np.testing.assert_allclose(result.pixels, 0.25 + 0.25 * 0.5)


def test_region_limits_where_the_result_applies() -> None:
    region = np.zeros((4, 6), dtype=np.float32)
    region[:, :3] = 1.0
    result = finish(run_job(_registry(), _request(region=region), RunContext()))
    np.testing.assert_allclose(result.pixels[:, :3], 0.75)
    np.testing.assert_allclose(result.pixels[:, 3:], 0.25)


def test_opacity_and_region_blend_in_place_without_full_size_temporaries() -> None:
    """Beyond the engine's result the blend holds a band of rows, not whole-image weights
    and products (it held about three extra images)."""
    rng = np.random.default_rng(0)
    image = Image(rng.random((2048, 1024, 3), dtype=np.float32))
    region = (rng.random((2048, 1024)) > 0.5).astype(np.float32)
    request = JobRequest("denoise", JobInputs((image,)), opacity=0.5, region=region)
    tracemalloc.start()
    try:
        result = finish(run_job(_registry(), request, RunContext()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = np.where(region[..., None] > 0, image.pixels + 0.25, image.pixels)
    np.testing.assert_allclose(result.pixels, expected, atol=1e-6)
    # the result (1), the region's weights (1/3) and bands (0.4); the old blend reached 4.0
    assert peak < 2.0 * image.pixels.nbytes


def test_blend_never_writes_into_the_original_when_an_engine_returns_it() -> None:
    registry = _registry(run=_identity)
    image = _image(0.25)
    request = JobRequest("denoise", JobInputs((image,)), opacity=0.5)
    result = finish(run_job(registry, request, RunContext()))
    np.testing.assert_allclose(image.pixels, 0.25)
    np.testing.assert_allclose(result.pixels, 0.25)


def _mirror(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
    """A flip that returns a view of the photo's pixels (`np.flip`), not a copy."""
    yield Progress(0, 1, "mirroring")
    return Image(np.flip(inputs.image.pixels, axis=0), inputs.image.meta)


def test_a_blend_with_a_view_of_the_original_leaves_the_open_photo_untouched() -> None:
    """The open photo is the original: a half-strength flip must not write into it."""
    ramp = np.linspace(0.0, 1.0, 4, dtype=np.float32)[:, None, None]
    image = Image(np.broadcast_to(ramp, (4, 6, 3)).copy())
    request = JobRequest("denoise", JobInputs((image,)), opacity=0.5)
    result = finish(run_job(_registry(run=_mirror), request, RunContext()))
    np.testing.assert_array_equal(image.pixels[:, 0, 0], ramp.ravel())
    np.testing.assert_allclose(result.pixels, 0.5, atol=1e-6)  # each row and its mirror


def test_a_read_only_result_is_blended_into_new_pixels() -> None:
    """An engine may hand back pixels it cannot let anyone change (a cached result)."""

    def cached(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
        yield Progress(0, 1, "cached")
        pixels = np.full((4, 6, 3), 0.75, np.float32)
        pixels.flags.writeable = False
        return inputs.image.with_pixels(pixels)

    result = finish(run_job(_registry(run=cached), _request(opacity=0.5), RunContext()))
    np.testing.assert_allclose(result.pixels, 0.5)


def test_region_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(BadInputError, match="Region mask is 5x5 but the image is 6x4"):
        finish(run_job(_registry(), _request(region=np.ones((5, 5))), RunContext()))


def test_opacity_zero_keeps_the_original() -> None:
    result = finish(run_job(_registry(), _request(opacity=0.0), RunContext()))
    np.testing.assert_allclose(result.pixels, 0.25)


@pytest.mark.parametrize("opacity", [-0.1, 1.2])
def test_opacity_outside_zero_to_one_is_refused(opacity: float) -> None:
    with pytest.raises(BadInputError, match="Opacity must be between 0 and 1"):
        finish(run_job(_registry(), _request(opacity=opacity), RunContext()))


def test_region_with_one_channel_and_out_of_range_values_is_accepted_and_clipped() -> None:
    region = np.zeros((4, 6, 1), dtype=np.float32)
    region[:, :3] = 2.0
    region[:, 3:] = -1.0
    result = finish(run_job(_registry(), _request(region=region), RunContext()))
    np.testing.assert_allclose(result.pixels[:, :3], 0.75)
    np.testing.assert_allclose(result.pixels[:, 3:], 0.25)


def test_region_of_booleans_is_accepted_and_of_text_refused() -> None:
    region = np.zeros((4, 6), dtype=bool)
    region[:, :3] = True
    result = finish(run_job(_registry(), _request(region=region), RunContext()))
    np.testing.assert_allclose(result.pixels[:, :3], 0.75)
    with pytest.raises(BadInputError, match="Region mask must hold numbers"):
        finish(run_job(_registry(), _request(region=np.full((4, 6), "a")), RunContext()))


def test_non_finite_result_is_refused() -> None:
    with pytest.raises(StudioError, match="invalid pixels"):
        finish(run_job(_registry(run=_nan), _request(), RunContext()))


@pytest.mark.parametrize(
    ("row", "value"), [(0, np.nan), (255, np.inf), (256, -np.inf), (599, np.nan)]
)
def test_one_non_finite_pixel_anywhere_in_a_tall_result_is_refused(row: int, value: float) -> None:
    """The check runs a band of rows at a time: the first, last and band-edge rows count too."""

    def one_bad_pixel(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
        yield Progress(0, 1, "breaking")
        pixels = inputs.image.pixels.copy()
        pixels[row, 1, 2] = value
        return inputs.image.with_pixels(pixels)

    tall = JobRequest("denoise", JobInputs((Image(np.zeros((600, 2, 3), np.float32)),)))
    with pytest.raises(StudioError, match="invalid pixels"):
        finish(run_job(_registry(run=one_bad_pixel), tall, RunContext()))


def _double(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
    yield Progress(0, 1, "enlarging")
    return inputs.image.with_pixels(np.repeat(np.repeat(inputs.image.pixels, 2, 0), 2, 1))


def test_a_result_of_another_size_is_kept_at_full_opacity_and_refused_for_a_blend() -> None:
    result = finish(run_job(_registry(run=_double), _request(), RunContext()))
    assert result.pixels.shape == (8, 12, 3)
    with pytest.raises(BadInputError, match="result of the same size as the original"):
        finish(run_job(_registry(run=_double), _request(opacity=0.5), RunContext()))


def _stored(value: float) -> OpRun:
    """An enlargement held at its stored depth (float32 samples, as for a float photo)."""
    yield Progress(0, 1, "enlarging")
    samples = np.full((8, 12, 3), 0.5, np.float32)
    samples[7, 11, 2] = value
    return StoredImage(samples, ImageMeta(bit_depth=32))


def test_an_enlargement_held_at_its_stored_depth_is_checked_and_never_blended() -> None:
    registry = _registry(run=lambda inputs, params, ctx: _stored(0.5))
    result = finish(run_job(registry, _request(params={"amount": 0.25}), RunContext()))
    assert isinstance(result, StoredImage) and result.samples.shape == (8, 12, 3)
    assert result.meta.history[-1] == 'denoise/shift {"amount": 0.25}'
    region = np.ones((4, 6), np.float32)
    for blend in ({"opacity": 0.5}, {"region": region}):
        with pytest.raises(BadInputError, match="result of the same size as the original"):
            finish(run_job(registry, _request(**blend), RunContext()))
    broken = _registry(run=lambda inputs, params, ctx: _stored(np.nan))
    with pytest.raises(StudioError, match="invalid pixels"):
        finish(run_job(broken, _request(), RunContext()))


def test_closing_the_generator_cancels_before_the_engine_finishes() -> None:
    finished = []

    def slow(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
        for i in range(10):
            yield Progress(i, 10)
        finished.append(True)
        return inputs.image

    gen = run_job(_registry(run=slow), _request(), RunContext())
    next(gen)
    gen.close()
    assert not finished


def test_inputs_are_checked_against_what_each_engine_declares() -> None:
    registry = build_registry()
    telea, levin = registry.get("inpaint", "telea"), registry.get("colorize", "levin")
    gaussian, merge = registry.get("denoise", "gaussian"), registry.get("hdr", "merge")
    for spec, given in ((telea, {"mask"}), (levin, {"hints"}), (levin, {"reference"})):
        check_inputs(spec, given)
    check_inputs(gaussian, set())
    check_inputs(merge, {"brackets"})
    for spec, given in ((telea, set()), (telea, {"hints"}), (levin, set()), (merge, set())):
        with pytest.raises(MissingInputError):
            check_inputs(spec, given)
    with pytest.raises(UsageError, match="takes one photo, not several"):
        check_inputs(gaussian, {"brackets"})


def _linear_photo() -> Image:
    """A camera RAW as Studio develops it: linear light, tagged so."""
    return Image(np.full((4, 6, 3), 0.2140, dtype=np.float32), ImageMeta(bit_depth=16, linear=True))


def test_engines_get_a_raw_srgb_encoded_unless_they_work_in_linear_light() -> None:
    request = JobRequest("denoise", JobInputs((_linear_photo(),)), params={"amount": 0.0})
    result = finish(run_job(_registry(), request, RunContext()))
    np.testing.assert_allclose(result.pixels, 0.5, atol=1e-4)  # sRGB 0.5 is linear 0.2140
    assert not result.meta.linear and result.meta.icc_profile  # tagged sRGB from now on
    linear = finish(run_job(_registry(linear_light=True), request, RunContext()))
    np.testing.assert_array_equal(linear.pixels, np.float32(0.2140))
    assert linear.meta.linear
