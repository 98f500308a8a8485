"""The blind estimator's kernel step: the normal operator taken in the kernel's small domain,
and the sparse prior that keeps a noisy estimate on the camera's path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from skimage import data as skdata


def _aligned_ncc(estimate: np.ndarray, truth: np.ndarray) -> float:
    padded = np.pad(estimate, max(truth.shape))
    peak = scipy.signal.correlate(padded, truth, mode="valid").max()
    return float(peak / np.linalg.norm(estimate) / np.linalg.norm(truth))


def test_the_small_domain_normal_operator_is_the_least_squares_one() -> None:
    """gram(k) = A^T A k, A the matrix whose column j is the edges circularly shifted by
    kernel offset j (built here explicitly, pixel by pixel)."""
    import torch

    from studio.engine.ops._deblur_blind import _Gram

    rng = np.random.default_rng(0)
    shape, size = (24, 20), 5
    edges = [rng.normal(size=shape) * (rng.random(shape) > 0.7) for _ in range(2)]
    columns = []
    for dy in range(size):
        for dx in range(size):
            shift = (dy - size // 2, dx - size // 2)
            columns.append(np.concatenate([np.roll(e, shift, (0, 1)).ravel() for e in edges]))
    matrix = np.stack(columns, axis=1)
    kernel = rng.random((size, size))
    expected = (matrix.T @ (matrix @ kernel.ravel())).reshape(size, size)
    normal = sum(torch.fft.rfft2(torch.from_numpy(e)).abs() ** 2 for e in edges)
    gram = _Gram(normal, shape, size)
    np.testing.assert_allclose(gram(torch.from_numpy(kernel)).numpy(), expected, rtol=1e-6)
    assert float(gram.diagonal) == pytest.approx(sum(float((e**2).sum()) for e in edges))


def _curved_path() -> np.ndarray:
    """A 15-px arc, fading from the start to a third of it at the end."""
    kernel = np.zeros((15, 15), np.float32)
    t = np.linspace(0, np.pi, 40)
    for y, x, w in zip(7 + 5 * np.sin(t), 2 + 10 * t / np.pi, np.linspace(1, 0.3, 40), strict=True):
        kernel[round(y), round(x)] += w
    return kernel / kernel.sum()


@pytest.mark.parametrize("seed", [0, 1])
def test_the_sparse_kernel_prior_keeps_a_noisy_estimate_on_the_path(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the sharp edges and a photo blurred by an arc plus 5 % noise, the kernel step
    with its sparse prior finds the arc (NCC 0.973-0.982 measured over three noise draws);
    plain least squares, thresholded alike, scatters mass around it (0.919-0.933)."""
    import torch

    from studio.engine.ops import _deblur_blind

    kernel = _curved_path()
    sharp = np.asarray(skdata.camera()[100:260, 100:260], np.float32) / 255
    blurred = scipy.signal.fftconvolve(np.pad(sharp, 7, mode="wrap"), kernel, mode="valid")
    blurred += np.random.default_rng(seed).normal(0, 0.05, sharp.shape)
    edges = _deblur_blind._gradients(torch.from_numpy(sharp))
    start = np.full((15, 15), 1 / 225, np.float32)
    observed = torch.from_numpy(blurred.astype(np.float32))

    def solved() -> np.ndarray:
        return _deblur_blind.solve_kernel(observed, edges, start)

    sparse = solved()
    assert sparse.sum() == pytest.approx(1.0, abs=1e-5)
    assert _aligned_ncc(sparse, kernel) >= 0.96
    monkeypatch.setattr(_deblur_blind, "KERNEL_SPARSITY", 0.0)
    assert _aligned_ncc(solved(), kernel) <= 0.95


def test_with_no_edge_the_kernel_step_keeps_the_kernel_it_started_from() -> None:
    """A latent with no edge left (it happened at one thread on a real photo) constrains no
    kernel: the step used to return NaN, which crashed the job."""
    import torch

    from studio.engine.ops import _deblur_blind

    start = np.zeros((5, 5), np.float32)
    start[2, 1:4] = 1 / 3
    observed = torch.from_numpy(np.random.default_rng(0).random((32, 32), np.float32))
    flat = (torch.zeros(32, 32), torch.zeros(32, 32))
    kernel = _deblur_blind.solve_kernel(observed, flat, start)
    np.testing.assert_array_equal(kernel, start)


def test_a_threshold_above_every_gradient_is_set_afresh() -> None:
    """The threshold carried from the previous iteration can lie above every gradient of a
    latent that has since been smoothed; the edges are then chosen afresh, not left empty."""
    import torch

    from studio.engine.ops import _deblur_blind

    latent = torch.from_numpy(np.asarray(skdata.camera()[:64, :64], np.float32) / 255)
    interior = torch.ones(64, 64, dtype=torch.bool)
    (gx, gy), _ = _deblur_blind.strong_edges(latent, interior, 5, threshold=1e6)
    assert int((gx != 0).sum() + (gy != 0).sum()) >= _deblur_blind.EDGES_PER_BIN * 5
