"""Denoise engines: quality against ground truth and baselines, noise estimation, protocol."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from skimage import data as skdata

from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs, Progress, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.ops import _denoise_bm3d as bm3d
from studio.engine.ops._denoise_sigma import estimate_sigma
from studio.engine.registry import build_registry
from tests.engine import baselines
from tests.helpers import finish, psnr
from tests.shared import shared_file


def run(
    engine: str, pixels: np.ndarray, bit_depth: int = 8, device: str = "cpu", **params: object
) -> np.ndarray:
    image = Image(pixels.astype(np.float32), ImageMeta(bit_depth=bit_depth))
    request = JobRequest("denoise", JobInputs((image,)), engine=engine, params=params)
    return finish(run_job(build_registry(), request, RunContext(device=device))).pixels


def add_noise(clean: np.ndarray, sigma255: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (clean + rng.normal(0, sigma255 / 255, clean.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(skdata.astronaut()[40:136, 160:256], np.float32) / 255


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return np.asarray(skdata.camera()[100:196, 200:296], np.float32)[..., None] / 255


def test_registry_default_is_collaborative_filtering() -> None:
    engines = build_registry().engines("denoise")
    assert [e.id for e in engines if e.default] == ["cbm3d"]
    assert {"cbm3d", "nlm", "gaussian"} <= {e.id for e in engines}


@pytest.mark.parametrize("sigma", [10.0, 25.0, 50.0])
def test_noise_estimate_on_synthetic_noise(sigma: float) -> None:
    clean = np.asarray(skdata.astronaut()[::2, ::2], np.float32) / 255
    estimate = estimate_sigma(add_noise(clean, sigma)) * 255
    assert estimate == pytest.approx(sigma, rel=0.1)


def test_noise_estimate_is_in_data_units() -> None:
    clean = np.asarray(skdata.coffee()[::2, ::2], np.float32) / 255
    noisy = add_noise(clean, 20)
    assert estimate_sigma(noisy * 8.0) == pytest.approx(8.0 * estimate_sigma(noisy), rel=1e-3)


@pytest.mark.realweights
def test_noise_estimate_on_cbsd68() -> None:
    folder = shared_file("testdata", "denoising", "CBSD68")
    for path in sorted(folder.glob("*.png"))[:4]:
        clean = np.asarray(PILImage.open(path).convert("RGB"), np.float32) / 255
        assert estimate_sigma(add_noise(clean, 25)) * 255 == pytest.approx(25, rel=0.08)


def test_default_beats_nlm_and_gaussian_on_colour(astronaut: np.ndarray, device: str) -> None:
    noisy = add_noise(astronaut, 25)
    scores = {
        e: psnr(run(e, noisy, device=device), astronaut) for e in ("cbm3d", "nlm", "gaussian")
    }
    assert scores["cbm3d"] > scores["nlm"] + 0.7
    assert scores["cbm3d"] > scores["gaussian"] + 1.0
    assert scores["gaussian"] > psnr(noisy, astronaut) + 3.0


def test_default_on_grey(camera: np.ndarray, device: str) -> None:
    noisy = add_noise(camera, 25)
    result = run("cbm3d", noisy, device=device)
    assert result.shape == camera.shape
    assert psnr(result, camera) > psnr(run("gaussian", noisy), camera) + 1.0


@pytest.mark.realweights
def test_default_beats_nlm_on_cbsd68_crops() -> None:
    folder = shared_file("testdata", "denoising", "CBSD68")
    gains = []
    for path in sorted(folder.glob("*.png"))[10:12]:
        clean = np.asarray(PILImage.open(path).convert("RGB"), np.float32)[:112, :112] / 255
        noisy = add_noise(clean, 25)
        gains.append(psnr(run("cbm3d", noisy), clean) - psnr(run("nlm", noisy), clean))
    assert min(gains) > 0.5


def test_float_input_keeps_its_scale(astronaut: np.ndarray, device: str) -> None:
    scale = 4.0
    clean = astronaut * scale
    noisy = add_noise(astronaut, 20) * scale
    result = run("cbm3d", noisy, bit_depth=32, device=device)
    assert result.max() > 1.5
    assert psnr(result, clean, peak=scale) > psnr(noisy, clean, peak=scale) + 5.0


def test_sigma_and_strength(astronaut: np.ndarray) -> None:
    noisy = add_noise(astronaut, 25)
    np.testing.assert_allclose(run("cbm3d", noisy, sigma=0.0), np.clip(noisy, 0, 1), atol=1e-6)
    soft = run("cbm3d", noisy, strength=0.4)
    full = run("cbm3d", noisy)
    assert np.abs(soft - noisy).mean() < np.abs(full - noisy).mean()


def test_tiled_result_matches_whole() -> None:
    # 96 px tiles: run_tiled raises a tile to four overlaps (4 x 24 px for collaborative filtering)
    astronaut = np.asarray(skdata.astronaut()[40:184, 160:304], np.float32) / 255
    noisy = add_noise(astronaut, 25)
    image = Image(noisy, ImageMeta(bit_depth=8))
    request = JobRequest("denoise", JobInputs((image,)), params={"sigma": 25.0})
    gen = run_job(build_registry(), request, RunContext(device="cpu", tile=96))
    steps = 0
    while True:
        try:
            steps += isinstance(next(gen), Progress)
        except StopIteration as stop:
            tiled = stop.value.pixels
            break
    assert steps >= 4
    assert abs(psnr(tiled, astronaut) - psnr(run("cbm3d", noisy, sigma=25.0), astronaut)) < 0.3


@pytest.mark.parametrize("engine", ["cbm3d", "nlm", "gaussian"])
def test_cancel_after_first_progress(engine: str, astronaut: np.ndarray) -> None:
    image = Image(add_noise(astronaut, 25))
    request = JobRequest("denoise", JobInputs((image,)), engine=engine)
    gen = run_job(build_registry(), request, RunContext(device="cpu", tile=64))
    assert isinstance(next(gen), Progress)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


def test_block_transform_and_aggregation_round_trip() -> None:
    torch = pytest.importorskip("torch")
    image = torch.rand(3, 30, 41)
    spectra = bm3d.block_spectra(image, 8)
    weights = torch.ones(spectra.shape[:2])
    restored = bm3d._aggregate_to_image(spectra, weights, (30, 41), 8)
    torch.testing.assert_close(restored, image, atol=1e-5, rtol=1e-5)


def test_block_matching_finds_itself_and_a_copy() -> None:
    torch = pytest.importorskip("torch")
    guide = torch.rand(40, 40)
    guide[20:28, 23:31] = guide[0:8, 3:11]  # plant a copy of the block at (0, 3)
    matches = bm3d.match_blocks(guide, bm3d.Stage(block=8, step=1, radius=25, group=2))
    width = 40 - 8 + 1
    assert set(matches[3].tolist()) == {3, 20 * width + 23}


@pytest.mark.parametrize(("gain", "offset"), [(4.0, -1.0), (4e-7, 1e-7)])
def test_nlm_on_a_float_photo_is_the_same_filter_on_its_range(gain: float, offset: float) -> None:
    """A float photo is filtered on its own range, scaled in place and back (no copies), in
    any units: radiance in units where the whole photo spans 4e-7 too (a floor of 1e-6 on
    the range filtered it on a third of the 8-bit levels); a flat one stays flat."""
    rng = np.random.default_rng(3)
    pixels = np.clip(rng.normal(0.5, 0.1, (40, 48, 3)), 0.0, 1.0).astype(np.float32)
    pixels[0, 0], pixels[-1, -1] = 0.0, 1.0  # the range is exactly [0, 1]
    unit = run("nlm", pixels, sigma=10.0)
    scaled = run("nlm", pixels * gain + offset, bit_depth=32, sigma=10.0 * gain)
    np.testing.assert_allclose(scaled, unit * gain + offset, atol=1e-5 * gain)
    flat = np.full((16, 20, 3), offset, np.float32)
    np.testing.assert_array_equal(run("nlm", flat, bit_depth=32, sigma=10.0), flat)


@pytest.mark.parametrize("channels", [1, 3])
def test_nlm_on_an_8_bit_photo_is_opencvs_filter_on_its_values(
    astronaut: np.ndarray, channels: int
) -> None:
    """The engine named "Non-local means (OpenCV)" is OpenCV's filter at the engine's own
    settings: on an 8-bit photo (black and white included) the sub-8-bit bookkeeping changes
    nothing, and a given noise level is OpenCV's h."""
    from studio.engine.ops.denoise import NLM_H, NLM_SEARCH, NLM_TEMPLATE

    noisy = np.clip(add_noise(astronaut[..., :channels], 25), 0, 1)
    values = np.rint(noisy * 255).astype(np.uint8)
    assert values.min() == 0 and values.max() == 255
    planes = values if channels == 3 else values[..., 0]
    reference = cv2.fastNlMeansDenoising(planes, None, 20 * NLM_H, NLM_TEMPLATE, NLM_SEARCH)
    result = run("nlm", values.astype(np.float32) / 255, sigma=20.0)
    np.testing.assert_allclose(result, reference.reshape(values.shape) / 255, atol=1e-6)


def test_nlm_sees_values_past_white_as_white(astronaut: np.ndarray) -> None:
    """An 8-bit photo that a script pushed slightly past white (1.02) is filtered as white:
    around that patch the result is the same as for a white patch (8-bit wrap-around would
    make it black and darken its neighbours)."""
    noisy = np.clip(add_noise(astronaut[:32, :32], 25), 0, 1)
    white, past = noisy.copy(), noisy.copy()
    white[12:20, 12:20], past[12:20, 12:20] = 1.0, 1.02
    around = np.ones(noisy.shape[:2], bool)
    around[12:20, 12:20] = False
    expected = run("nlm", white, sigma=20.0)[around]
    np.testing.assert_array_equal(run("nlm", past, sigma=20.0)[around], expected)


def test_gaussian_is_a_true_gaussian_of_the_given_radius_times_strength(
    astronaut: np.ndarray,
) -> None:
    """A given radius, scaled by strength, blurs both directions like scipy's Gaussian filter."""
    from scipy.ndimage import gaussian_filter

    noisy = np.clip(add_noise(astronaut, 25), 0, 1).astype(np.float32)
    reference = gaussian_filter(noisy, sigma=(3.0, 3.0, 0.0), mode="reflect", truncate=4.0)
    result = run("gaussian", noisy, radius=1.5, strength=2.0)
    np.testing.assert_allclose(result, reference, atol=1e-5)


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
@pytest.mark.parametrize("sigma", [10.0, 25.0])
def test_gaussian_chooses_a_radius_near_the_best_blur(name: str, sigma: float) -> None:
    """The radius chosen from the estimated noise is within 0.3 dB of the best Gaussian blur.
    Measured loss (astronaut, chelsea): 0.22, 0.00 dB at sigma 10; 0.11, 0.00 at sigma 25.
    A radius 1.5 times steeper in sigma, or a floor 1.5 times higher, loses 0.4-1.0 dB."""
    clean = baselines.photo(name)
    noisy = np.clip(add_noise(clean, sigma), 0, 1).astype(np.float32)
    best = baselines.best_gaussian_denoise(noisy, clean)
    assert psnr(run("gaussian", noisy), clean) > best - 0.3


def test_the_default_strength_removes_the_noise_best(astronaut: np.ndarray) -> None:
    """Strength 1 (the default) beats two thirds and one and a half of the estimated level.
    Measured at sigma 25 (cbm3d): 25.29 / 29.69 / 28.77 dB at strength 0.67 / 1 / 1.5."""
    noisy = np.clip(add_noise(astronaut, 25), 0, 1).astype(np.float32)
    default = psnr(run("cbm3d", noisy), astronaut)
    for strength in (0.67, 1.5):
        assert default > psnr(run("cbm3d", noisy, strength=strength), astronaut) + 0.5


def test_nlm_on_grey_beats_the_best_gaussian_blur(camera: np.ndarray) -> None:
    """A one-channel photo is filtered as one plane. Measured at sigma 25: identity 20.18,
    best Gaussian 26.22, nlm 26.82 dB."""
    noisy = add_noise(camera, 25)
    result = run("nlm", noisy)
    assert result.shape == camera.shape
    assert psnr(result, camera) > baselines.best_gaussian_denoise(noisy, camera) + 0.3


def test_nlm_honours_the_tile_size_without_seams() -> None:
    """A tile size the user sets (for memory) is used, and its seams cost nothing visible."""
    clean = np.asarray(skdata.astronaut()[40:184, 160:304], np.float32) / 255
    noisy = add_noise(clean, 25)
    request = JobRequest("denoise", JobInputs((Image(noisy),)), engine="nlm")
    job = run_job(build_registry(), request, RunContext(device="cpu", tile=64))
    tiles = []
    while True:
        try:
            tiles.append(next(job))
        except StopIteration as stop:
            tiled = stop.value.pixels
            break
    assert sum("tile" in p.message for p in tiles if isinstance(p, Progress)) >= 4
    assert abs(psnr(tiled, clean) - psnr(run("nlm", noisy), clean)) < 0.1


def test_an_integer_photo_stays_between_black_and_white(astronaut: np.ndarray) -> None:
    """Collaborative filtering overshoots near blown highlights (to 1.049 and -0.041 on this
    overexposed crop at sigma 25): an 8-bit photo's result is clipped to black and white, a
    float photo keeps the values beyond."""
    overexposed = np.clip(astronaut * 1.6, 0, 1)
    noisy = np.clip(add_noise(overexposed, 25), 0, 1).astype(np.float32)
    result = run("cbm3d", noisy)
    assert result.min() == 0.0
    assert result.max() == 1.0
    kept = run("cbm3d", noisy, bit_depth=32)
    assert kept.max() > 1.03
    assert kept.min() < -0.03
