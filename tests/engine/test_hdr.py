"""HDR engines: radiance merge, ghost suppression, exposure times, alignment, fusion, tone mapping.

Synthetic brackets are made from a known radiance image through a known camera response
(gamma 1/2.2, 8-bit quantisation, slight noise), so the merge can be checked against truth.
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import pytest

from studio.core.errors import BadInputError, MissingInputError, UsageError
from studio.core.image import Image, ImageMeta, luminance
from studio.core.imageio import read_image
from studio.core.protocol import JobInputs, OpRun, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.ops import _hdr_brackets, _hdr_fusion, _hdr_merge, _hdr_response
from studio.engine.registry import build_registry
from tests.shared import shared_file

TIMES = (1 / 8, 1 / 2, 2.0, 8.0)


def _finish(gen: OpRun) -> Image:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def _run(engine: str, images: Sequence[Image], **params: Any) -> Image:
    request = JobRequest("hdr", JobInputs(tuple(images)), engine, params)
    return _finish(run_job(build_registry(), request, RunContext()))


def _scene(height: int = 96, width: int = 128, seed: int = 0, stops: float = 8.0) -> np.ndarray:
    """Radiance spanning `stops` left to right (brightest 2**2), with texture and a warm colour."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(2.0 - stops, 2.0, width, dtype=np.float32)[None, :].repeat(height, 0)
    texture = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 3)
    log2 = ramp + 0.7 * texture / texture.std()
    return (2.0**log2)[..., None] * np.array([1.0, 0.8, 0.6], dtype=np.float32)


def _expose(radiance: np.ndarray, t: float, rng: np.random.Generator) -> Image:
    z = np.clip(radiance * t, 0.0, 1.0) ** (1 / 2.2) + rng.normal(0.0, 0.002, radiance.shape)
    return Image((np.rint(np.clip(z, 0.0, 1.0) * 255) / 255).astype(np.float32))


def _brackets(radiance: np.ndarray, times: Sequence[float] = TIMES) -> list[Image]:
    rng = np.random.default_rng(1)
    return [_expose(radiance, t, rng) for t in times]


def _stops_error(merged: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|log2 ratio| after removing the unknown global scale."""
    diff = np.log2(np.maximum(merged, 1e-12) / truth)
    return np.asarray(np.abs(diff - np.median(diff)))


def test_merge_recovers_relative_radiance_and_returns_float() -> None:
    truth = _scene()
    result = _run("merge", _brackets(truth), times=list(TIMES))
    assert result.meta.bit_depth == 32
    assert result.pixels.shape == truth.shape
    error = _stops_error(result.pixels, truth)
    assert np.median(error) < 0.05
    assert np.percentile(error, 95) < 0.2


def test_merge_recovers_the_gamma_response() -> None:
    truth = _scene()
    images = _brackets(truth)
    times = np.asarray(TIMES)
    log_response = _hdr_response.calibrate_response(
        _hdr_response.calibration_images(images, [(0, 0)] * 4), times, "debevec"
    )
    levels = np.arange(20, 236)
    expected = 2.2 * np.log(levels / 255.0) - 2.2 * np.log(0.5)
    assert np.max(np.abs(log_response[levels, 1] - expected)) / np.log(2) < 0.15


def _moving_square(radiance: np.ndarray, corner: tuple[int, int]) -> np.ndarray:
    """A 20 px square 3 stops darker than the scene, at `corner` (y, x)."""
    out = radiance.copy()
    y, x = corner
    out[y : y + 20, x : x + 20] /= 8.0
    return out


CORNERS = ((10, 70), (40, 70), (66, 70), (10, 100))


def _ghost_brackets(truth: np.ndarray) -> list[Image]:
    rng = np.random.default_rng(2)
    return [_expose(_moving_square(truth, c), t, rng) for c, t in zip(CORNERS, TIMES, strict=True)]


def _square_error(merged: np.ndarray, scene: np.ndarray, corner: tuple[int, int]) -> float:
    y, x = corner
    window = (slice(y + 3, y + 17), slice(x + 3, x + 17))
    scale = np.median(merged / scene)
    return float(np.median(np.abs(np.log2(merged[window] / (scale * scene[window])))))


def test_ghost_suppression_keeps_the_moving_square_only_where_the_reference_has_it() -> None:
    truth = _scene()
    images = _ghost_brackets(truth)
    reference = 2  # the 1/2 s bracket, 1-based
    kept = _moving_square(truth, CORNERS[reference - 1])
    merged = _run("merge", images, times=list(TIMES), reference=reference).pixels
    ghosted = _run("merge", images, times=list(TIMES), reference=reference, deghost=False).pixels
    for corner in CORNERS:
        assert _square_error(merged, kept, corner) < 0.15, corner
    assert max(_square_error(ghosted, kept, corner) for corner in CORNERS) > 0.5


def test_swapped_times_are_detected() -> None:
    images = _brackets(_scene())
    swapped = [TIMES[0], TIMES[2], TIMES[1], TIMES[3]]
    with pytest.raises(BadInputError, match="contradict"):
        _run("merge", images, times=swapped)


def test_missing_times_are_an_error_not_a_guess() -> None:
    with pytest.raises(BadInputError, match="EXIF"):
        _run("merge", _brackets(_scene()))


def test_times_come_from_exif_and_may_be_written_as_fractions() -> None:
    images = _brackets(_scene())
    tagged = [
        dataclasses.replace(im, meta=ImageMeta(exposure_time=t))
        for im, t in zip(images, TIMES, strict=True)
    ]
    from_exif = _run("merge", tagged)
    from_param = _run("merge", images, times="1/8, 1/2, 2, 8")
    np.testing.assert_array_equal(from_exif.pixels, from_param.pixels)


@pytest.mark.parametrize("times", [[1 / 8, 1 / 2, 2.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 2.0, 4.0]])
def test_wrong_count_equal_or_zero_times_are_errors(times: list[float]) -> None:
    with pytest.raises(BadInputError):
        _run("merge", _brackets(_scene()), times=times)


def test_inputs_of_different_sizes_are_a_clear_error() -> None:
    images = _brackets(_scene())
    images[1] = Image(images[1].pixels[:-4])
    with pytest.raises(BadInputError, match="same size"):
        _run("merge", images, times=list(TIMES))
    with pytest.raises(BadInputError, match="same size"):
        _run("fusion", images)


def test_one_bracket_is_not_enough() -> None:
    with pytest.raises(MissingInputError, match="at least two"):
        _run("fusion", _brackets(_scene())[:1])


def _shift(image: Image, dy: int, dx: int) -> Image:
    moved = np.roll(image.pixels, (dy, dx), axis=(0, 1))
    return Image(np.ascontiguousarray(moved))


def test_alignment_finds_hand_held_shifts_and_improves_the_merge() -> None:
    truth = _scene(128, 160)
    images = _brackets(truth)
    images[0] = _shift(images[0], -2, 3)  # a shake before the second shot,
    images[2] = _shift(images[2], 4, -1)  # and a bump of the tripod after it
    images[3] = _shift(images[3], 4, -1)
    greys = [_hdr_brackets.grey_preview(im) for im in images]
    shifts = _hdr_brackets.align_shifts(greys, np.asarray(TIMES), 1, 32)
    assert shifts == [(2, -3), (0, 0), (-4, 1), (-4, 1)]
    inner = (slice(8, -8), slice(8, -8))
    aligned = _run("merge", images, times=list(TIMES), reference=2, deghost=False)
    unaligned = _run("merge", images, times=list(TIMES), reference=2, deghost=False, align=False)
    err_aligned = np.median(_stops_error(aligned.pixels[inner], truth[inner]))
    err_unaligned = np.median(_stops_error(unaligned.pixels[inner], truth[inner]))
    assert err_aligned < 0.05 < err_unaligned


def test_grey_brackets_give_a_grey_radiance() -> None:
    truth = _scene()[..., 1:2]
    result = _run("merge", _brackets(truth), times=list(TIMES))
    assert result.channels == 1
    assert np.median(_stops_error(result.pixels, truth)) < 0.05


def test_fusion_exposes_more_pixels_well_than_any_bracket() -> None:
    images = _brackets(_scene(stops=14.0), times=(1 / 32, 1 / 4, 2.0, 16.0))
    fused = _run("fusion", images)
    assert fused.meta.bit_depth == 16
    assert fused.pixels.shape == images[0].pixels.shape
    assert fused.pixels.min() >= 0.0 and fused.pixels.max() <= 1.0

    def well_exposed(pixels: np.ndarray) -> float:
        y = luminance(pixels)
        return float(np.mean((y > 0.1) & (y < 0.9)))

    assert well_exposed(fused.pixels) > max(well_exposed(im.pixels) for im in images) + 0.1


@pytest.mark.parametrize("preferences", [(1.0, 1.0, 1.0), (0.5, 2.0, 1.5)])
def test_fusion_agrees_with_opencv_mertens(preferences: tuple[float, float, float]) -> None:
    """The bracket-at-a-time fusion is OpenCV's MergeMertens blend, to float rounding (which
    flat, 8-bit-quantised areas, where every bracket's weight is near zero, magnify)."""
    images = _brackets(_scene(height=200, width=301, stops=12.0), times=(1 / 16, 1 / 2, 4.0))
    fused = _run("fusion", images, **dict(zip(_PREFERENCES, preferences, strict=True)))
    fuse = cv2.createMergeMertens(*preferences)
    opencv = np.clip(fuse.process([im.pixels * np.float32(255) for im in images]), 0.0, 1.0)
    difference = np.abs(fused.pixels - opencv)
    assert difference.mean() < 2e-5 and np.percentile(difference, 99.9) < 1e-3
    assert difference.max() < 1e-2


_PREFERENCES = ("contrast_weight", "saturation_weight", "exposure_weight")


def test_fusion_of_grey_brackets_weighs_them_and_stays_grey() -> None:
    truth = _scene(stops=14.0)
    images = _brackets(truth[..., 1:2], times=(1 / 32, 1 / 4, 2.0, 16.0))
    fused = _run("fusion", images, align=False).pixels
    assert fused.shape == images[0].pixels.shape
    plain_mean = np.mean([im.pixels for im in images], axis=0)
    opencv = cv2.createMergeMertens(1.0, 1.0, 1.0).process(
        [im.pixels[..., 0] * np.float32(255) for im in images]
    )
    difference = np.abs(fused[..., 0] - np.clip(opencv, 0.0, 1.0))
    assert difference.mean() < 1e-4 and np.percentile(difference, 99) < 1e-3
    assert np.abs(fused - plain_mean).mean() > 0.01  # weighed, not averaged


def test_fusion_holds_one_bracket_at_a_time() -> None:
    """Beyond the brackets, fusing holds about three images (result pyramid, weight sum, one
    bracket's weights and one channel's pyramid), not every bracket's pyramids."""
    rng = np.random.default_rng(0)
    brackets = [_hdr_fusion.Bracket(rng.random((1536, 512, 3), dtype=np.float32)) for _ in range(4)]
    tracemalloc.start()
    try:
        fused = _finish(_hdr_fusion.fuse(brackets, 3, _hdr_fusion.Preferences()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fused.shape == (1536, 512, 3)
    assert peak < 4.0 * brackets[0].pixels.nbytes


def _radiance_image(radiance: np.ndarray) -> Image:
    return Image(radiance.astype(np.float32), ImageMeta(bit_depth=32))


def test_local_tonemap_of_an_8_bit_photo_holds_little_beyond_its_result() -> None:
    """Linearising, the guided filter, colour and display levels work in place or in bands:
    beyond the input, the result plus under one and a half planes-of-three (it was 8.25)."""
    rng = np.random.default_rng(0)
    image = Image(rng.random((1536, 1024, 3), dtype=np.float32), ImageMeta(bit_depth=8))
    tracemalloc.start()
    try:
        result = _run("tonemap", [image], operator="local")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.pixels.shape == image.pixels.shape
    assert peak < 2.75 * image.pixels.nbytes


@pytest.mark.parametrize("operator", ["local", "reinhard", "drago", "mantiuk"])
def test_tonemap_maps_radiance_to_an_ordered_display_image(operator: str) -> None:
    radiance = _scene()
    result = _run("tonemap", [_radiance_image(radiance)], operator=operator)
    pixels = result.pixels
    assert result.meta.bit_depth == 16
    assert np.isfinite(pixels).all() and pixels.min() >= 0.0 and pixels.max() <= 1.0
    # brighter scene columns stay brighter: rank correlation of column means
    scene_cols = luminance(radiance).mean(axis=0)
    out_cols = luminance(pixels).mean(axis=0)
    rank = np.corrcoef(np.argsort(np.argsort(scene_cols)), np.argsort(np.argsort(out_cols)))[0, 1]
    assert rank > 0.9
    # 8 stops of scene fit the display: both ends are visible, neither clipped to black nor white
    lum = luminance(pixels)
    assert np.percentile(lum, 5) > 0.02 and np.percentile(lum, 95) < 0.995


def test_local_tonemap_keeps_texture_in_shadows_and_highlights() -> None:
    radiance = _scene(seed=3)
    out = luminance(_run("tonemap", [_radiance_image(radiance)], operator="local").pixels)
    for half in (slice(0, 64), slice(64, 128)):
        detail = out[:, half] - cv2.GaussianBlur(out, (0, 0), 8)[:, half]
        assert detail.std() > 0.02


def test_tonemap_takes_exactly_one_image() -> None:
    with pytest.raises(UsageError, match="takes one photo, not several"):
        _run("tonemap", [_radiance_image(_scene())] * 2)


def _memorial() -> tuple[list[Image], list[float]]:
    folder = shared_file("testdata", "hdr", "memorial")
    entries = [
        line.split()
        for line in (folder / "image_list.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return [read_image(folder / e[0]) for e in entries], [float(e[1]) for e in entries]


@pytest.mark.realweights
def test_memorial_brackets_agree_with_the_merged_radiance() -> None:
    images, times = _memorial()
    merged = _run("merge", images, times=times)
    t = np.asarray(times)
    unshifted = [(0, 0)] * len(images)  # the set is registered; the merge finds no shift
    log_response = _hdr_response.calibrate_response(
        _hdr_response.calibration_images(images, unshifted), t, "debevec"
    )
    agreement = _hdr_merge.bracket_agreement(images, t, log_response, unshifted, merged.pixels)
    assert max(agreement) < 0.4


@pytest.mark.realweights
def test_memorial_swapped_times_are_detected() -> None:
    images, times = _memorial()
    times[5], times[6] = times[6], times[5]
    with pytest.raises(BadInputError, match="contradict"):
        _run("merge", images, times=times)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0), (0.5, 2.0, 0.0), (0.0, 0.0, 1.0)])
def test_fusion_agrees_with_opencvs_mertens_while_holding_one_bracket_at_a_time(
    weights: tuple[float, float, float],
) -> None:
    """The built-in fusion streams the brackets; OpenCV's MergeMertens is the reference."""
    images = _brackets(_scene(height=75, width=101))[:3]
    contrast, saturation, exposure = weights
    params = {"align": False, "contrast_weight": contrast}
    params |= {"saturation_weight": saturation, "exposure_weight": exposure}
    fused = _run("fusion", images, **params).pixels
    mertens = cv2.createMergeMertens(contrast, saturation, exposure)
    reference = mertens.process([np.ascontiguousarray(i.pixels * 255) for i in images])
    assert fused.shape == reference.shape
    error = np.abs(fused - np.clip(reference, 0.0, 1.0))
    assert error.max() < 0.1 / 255 and error.mean() < 1e-5  # float32 rounding only
