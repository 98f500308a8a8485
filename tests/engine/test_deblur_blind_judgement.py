"""The blind deblur's judgement of an estimated kernel: a wrong estimate that would ring the
photo below its blurred self is refused, and a long true shake is not."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import scipy.signal
from PIL import Image as PILImage

from tests.helpers import psnr
from tests.shared import shared_file


def _blurred(sharp: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(truth, blurred): 'valid' convolution plus 1 % noise, cropped alike."""
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    channels = [scipy.signal.fftconvolve(sharp[..., c], kernel, mode="valid") for c in range(3)]
    blurred = np.stack(channels, -1) + np.random.default_rng(4).normal(
        0, 0.01, (*channels[0].shape, 3)
    )
    truth = sharp[ky : ky + blurred.shape[0], kx : kx + blurred.shape[1]]
    return truth, blurred.astype(np.float32)


def _judged(kernel: np.ndarray, blurred: np.ndarray) -> str:
    import torch

    from studio.engine.ops._deblur_blind_run import estimation_window, judged, normalised_luminance

    window = estimation_window(normalised_luminance(blurred), None)
    return judged(kernel.astype(np.float32), window, 0.01, torch.device("cpu")).reason


# What the estimator found (values x 1000, in its 45-px frame) on CBSD68 229036 shaken by
# kernel 10 of kernels_12.mat: explaining the photo 0.24 better than no blur (enough to be
# trusted before), it took the photo 0.7 dB below its blurred self.
WRONG_ESTIMATE = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 12, 21, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 18, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 17, 24, 12],
        [19, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [34, 47, 46, 38, 0, 0, 0, 0, 0, 0, 0],
        [43, 59, 78, 56, 0, 0, 0, 0, 0, 0, 0],
        [19, 27, 56, 41, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 48, 39, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 32, 32, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 25, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 33, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 19, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 19, 0, 0, 0, 0, 0, 0, 0],
    ],
    np.float32,
)


@pytest.mark.realweights
def test_an_estimate_that_would_ring_is_refused() -> None:
    from studio.engine.device import resolve_device
    from studio.engine.ops._deblur_solvers import hyper_laplacian, prepare

    photo = shared_file("testdata", "denoising", "CBSD68", "229036.png")
    kernels = shared_file("testdata", "deblurring", "kernels", "kernels_12.mat")
    sharp = np.asarray(PILImage.open(photo).convert("RGB"), np.float32) / 255
    true_kernel = np.asarray(scipy.io.loadmat(kernels)["kernels"][0][9], np.float32)
    truth, blurred = _blurred(sharp, true_kernel / true_kernel.sum())
    wrong = np.zeros((45, 45), np.float32)
    wrong[15:31, 17:28] = WRONG_ESTIMATE / WRONG_ESTIMATE.sum()
    rung = hyper_laplacian(prepare(blurred, wrong, resolve_device("cpu")), 0.01)
    assert psnr(rung, truth) < psnr(blurred, truth) - 0.2
    assert _judged(wrong, blurred) != "kernel found"
    assert _judged(true_kernel / true_kernel.sum(), blurred) == "kernel found"


@pytest.mark.realweights
def test_a_41_px_camera_path_is_trusted() -> None:
    """The benchmark's 41-px camera path on a CBSD68 photo: judged on tiles of one kernel
    plus a margin, the true kernel explained the photo too little better than no blur."""
    from benchmarks.quality.deblur_blind import trajectory_kernel

    photo = shared_file("testdata", "denoising", "CBSD68", "143090.png")
    sharp = np.asarray(PILImage.open(photo).convert("RGB"), np.float32) / 255
    rng = np.random.default_rng(11)
    for size in (15, 23, 31):
        trajectory_kernel(size, rng)
    path = trajectory_kernel(41, rng)
    _, blurred = _blurred(sharp, path)
    kernel = np.pad(path, 2)  # as estimated: in the 45-px frame the default search uses
    assert _judged(kernel, blurred) == "kernel found"


def _path(support: int, cells: list[tuple[int, int]]) -> np.ndarray:
    kernel = np.zeros((support, support), np.float32)
    for row, col in cells:
        kernel[row, col] = 1.0
    return kernel / kernel.sum()


def test_a_smaller_support_filled_to_its_edge_leaves_the_larger_estimate() -> None:
    """A 21-px shake seen through a 23-px support fills it: that estimate is cut short."""
    from studio.engine.ops._deblur_blind_run import fitting_estimates

    large = _path(63, [(31, c) for c in range(21, 42)])
    small = _path(23, [(11, c) for c in range(0, 23)])
    assert [k.shape for k in fitting_estimates([large, small])] == [(63, 63)]


def test_a_larger_estimate_reaching_beyond_a_fitting_smaller_one_is_dropped() -> None:
    """A compact 9-px blur in the 23-px support, and a 40-px faint streak in the 63-px one."""
    from studio.engine.ops._deblur_blind_run import fitting_estimates

    streak = _path(63, [(31, c) for c in range(11, 51)])
    compact = _path(23, [(11, c) for c in range(7, 16)])
    assert [k.shape for k in fitting_estimates([streak, compact])] == [(23, 23)]


def test_estimates_that_both_fit_are_both_compared() -> None:
    from studio.engine.ops._deblur_blind_run import fitting_estimates

    large = _path(63, [(31, c) for c in range(22, 41)])
    small = _path(23, [(11, c) for c in range(2, 21)])
    assert [k.shape for k in fitting_estimates([large, small])] == [(63, 63), (23, 23)]
