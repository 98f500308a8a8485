"""Degrade engines: noise of the stated level, blur equal to convolution, JPEG, holes."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.ops.degrade import make_box_mask
from studio.engine.psf import motion_psf
from studio.engine.registry import build_registry


def _degrade(pixels: np.ndarray, engine: str, **params: Any) -> np.ndarray:
    inputs = JobInputs((Image(pixels, ImageMeta(bit_depth=16)),))
    gen = run_job(build_registry(), JobRequest("degrade", inputs, engine, params), RunContext())
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            result: Image = stop.value
            return result.pixels


def _texture(size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = ndimage.gaussian_filter(rng.random((size, size, 3)), (2, 2, 0))
    return (0.2 + 0.6 * (base - base.min()) / np.ptp(base)).astype(np.float32)


def test_gaussian_noise_has_the_stated_level_and_repeats_with_the_seed() -> None:
    grey = np.full((200, 200, 3), 0.5, np.float32)
    noisy = _degrade(grey, "noise", level=10.0, seed=4)
    assert abs((noisy - grey).std() * 255 / 10.0 - 1.0) < 0.05
    np.testing.assert_array_equal(noisy, _degrade(grey, "noise", level=10.0, seed=4))
    assert not np.array_equal(noisy, _degrade(grey, "noise", level=10.0, seed=5))


def test_poisson_noise_variance_follows_the_photon_count() -> None:
    grey = np.full((200, 200, 1), 0.5, np.float32)
    peak = 50.0
    noisy = _degrade(grey, "noise", kind="poisson", level=peak, seed=1)
    expected_std = np.sqrt(0.5 * peak) / peak
    assert abs(noisy.std() / expected_std - 1.0) < 0.05
    assert abs(noisy.mean() - 0.5) < 0.01


def test_blur_equals_convolution_with_the_psf() -> None:
    image = _texture()
    blurred = _degrade(image, "blur", psf="motion", length=7.0, angle=30.0)
    kernel = motion_psf(7.0, 30.0)
    for c in range(3):
        reference = ndimage.convolve(image[..., c].astype(np.float64), kernel, mode="reflect")
        np.testing.assert_allclose(blurred[..., c], reference, atol=1e-5)


def test_jpeg_changes_the_image_deterministically() -> None:
    image = _texture()
    low = _degrade(image, "jpeg", quality=10)
    high = _degrade(image, "jpeg", quality=95)
    np.testing.assert_array_equal(low, _degrade(image, "jpeg", quality=10))
    assert np.abs(low - image).mean() > np.abs(high - image).mean() > 0


def test_masks_cover_the_requested_fraction() -> None:
    for fraction in (0.02, 0.1):
        mask = make_box_mask((90, 160), fraction, seed=2)
        assert abs(mask.mean() - fraction) < 0.01
        np.testing.assert_array_equal(mask, make_box_mask((90, 160), fraction, seed=2))
    image = _texture()
    holed = _degrade(image, "mask", fraction=0.05, fill=0.0, seed=7)
    assert abs(np.all(holed == 0.0, axis=2).mean() - 0.05) < 0.01
    scattered = _degrade(image, "mask", pattern="pixels", fraction=0.3, fill=1.0, seed=7)
    assert abs(np.all(scattered == 1.0, axis=2).mean() - 0.3) < 0.02
