"""Deblur engines: gains over the blurred input with known kernels, PSFs, kernel files, auto."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.signal
from PIL import Image as PILImage
from skimage import data as skdata

from studio.core.errors import BadInputError
from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs, Progress, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.psf import defocus_psf, gaussian_psf, load_kernel, motion_psf
from studio.engine.registry import build_registry
from tests.helpers import finish, psnr
from tests.shared import shared_file

ENGINES = ("hyper_laplacian", "wiener", "richardson_lucy")


def run(engine: str, pixels: np.ndarray, bit_depth: int = 8, **params: object) -> np.ndarray:
    image = Image(pixels.astype(np.float32), ImageMeta(bit_depth=bit_depth))
    request = JobRequest("deblur", JobInputs((image,)), engine=engine, params=params)
    return finish(run_job(build_registry(), request, RunContext(device="cpu"))).pixels


def blur(sharp: np.ndarray, kernel: np.ndarray, noise: float = 0.01, seed: int = 3):
    """Blur like a camera ('valid' convolution: real content beyond the borders) plus noise;
    returns (truth, blurred) of the same size."""
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    blurred = np.stack(
        [
            scipy.signal.fftconvolve(sharp[..., c], kernel, mode="valid")
            for c in range(sharp.shape[2])
        ],
        axis=-1,
    )
    rng = np.random.default_rng(seed)
    blurred = blurred + rng.normal(0, noise, blurred.shape)
    return sharp[ky : sharp.shape[0] - ky, kx : sharp.shape[1] - kx], blurred.astype(np.float32)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(skdata.astronaut()[20:180, 150:310], np.float32) / 255


# --- PSFs and kernel files ---------------------------------------------------------------


def test_motion_psf_orientation_and_length() -> None:
    horizontal = motion_psf(9, 0)
    centre = horizontal.shape[0] // 2
    assert horizontal.sum() == pytest.approx(1.0, abs=1e-5)
    assert horizontal[centre].sum() == pytest.approx(1.0, abs=1e-5)
    assert np.count_nonzero(horizontal[centre] > 1e-3) in (9, 10)
    vertical = motion_psf(9, 90)
    np.testing.assert_allclose(vertical, horizontal.T, atol=1e-6)
    diagonal = motion_psf(9, 45)
    ys, xs = np.nonzero(diagonal > 0.02)
    assert np.all((ys - centre) * (xs - centre) <= 0)  # up-right: rows fall as columns rise


def test_defocus_and_gaussian_psfs_are_symmetric_unit_sum() -> None:
    for kernel in (defocus_psf(3.5), gaussian_psf(2.0)):
        assert kernel.shape[0] % 2 == 1
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(kernel, kernel.T, atol=1e-6)
        np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-6)


def test_kernel_file_png_and_npy_are_normalised(tmp_path: Path) -> None:
    kernel = np.zeros((6, 6), np.float64)
    kernel[2, 1:5] = [10, 50, 50, 10]
    np.save(tmp_path / "k.npy", kernel)
    PILImage.fromarray(kernel.astype(np.uint8)).save(tmp_path / "k.png")
    from_npy = load_kernel(tmp_path / "k.npy")
    from_png = load_kernel(tmp_path / "k.png")
    assert from_npy.shape == (7, 7)
    assert from_npy.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(from_png, from_npy, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.png", None, "not found"),
        ("zeros.npy", np.zeros((5, 5)), "empty"),
        ("cube.npy", np.ones((3, 3, 3)), "2-D"),
        ("nan.npy", np.full((3, 3), np.nan), "NaN"),
        ("huge.npy", np.ones((300, 300)), "at most"),
        ("text.png", b"not an image", "Cannot read"),
    ],
)
def test_kernel_file_errors(tmp_path: Path, name: str, content: object, message: str) -> None:
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(BadInputError, match=message):
        load_kernel(path)


def test_bad_kernel_file_through_run_job(tmp_path: Path, astronaut: np.ndarray) -> None:
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(BadInputError):
        run("hyper_laplacian", astronaut, kernel=str(tmp_path / "bad.npy"))


# --- quality with a known kernel -----------------------------------------------------------


def test_default_gains_with_motion_kernel(astronaut: np.ndarray) -> None:
    truth, blurred = blur(astronaut, motion_psf(11, 30))
    base = psnr(blurred, truth)
    gains = {
        e: psnr(run(e, blurred, psf="motion", length=11, angle=30), truth) - base for e in ENGINES
    }
    assert gains["hyper_laplacian"] > 1.0
    # No ranking of hyper_laplacian over wiener: their PSNR differs by -0.2 to +0.2 dB with
    # this kernel (astronaut, chelsea; noise 1-3 %), a snapshot, not a property. Each must beat
    # the best unsharp mask instead: test_beats_trivial.
    assert min(gains.values()) > -0.2


def test_kernel_file_equals_parameters(tmp_path: Path, astronaut: np.ndarray) -> None:
    kernel = defocus_psf(2.5)
    np.save(tmp_path / "disc.npy", kernel * 7.0)
    truth, blurred = blur(astronaut, kernel)
    by_file = run("hyper_laplacian", blurred, kernel=str(tmp_path / "disc.npy"))
    by_params = run("hyper_laplacian", blurred, psf="defocus", radius=2.5)
    np.testing.assert_allclose(by_file, by_params, atol=1e-5)
    assert psnr(by_file, truth) > psnr(blurred, truth) + 1.5


def test_mild_gaussian_blur_is_not_made_worse(astronaut: np.ndarray) -> None:
    truth, blurred = blur(astronaut, gaussian_psf(0.7))
    base = psnr(blurred, truth)
    for engine in ENGINES:
        assert psnr(run(engine, blurred, psf="gaussian", sigma=0.7), truth) > base - 0.2


def test_borders_do_not_ring(astronaut: np.ndarray) -> None:
    truth, blurred = blur(astronaut, motion_psf(15, 0))
    result = run("hyper_laplacian", blurred, psf="motion", length=15, angle=0)
    frame = np.ones(truth.shape[:2], bool)
    frame[24:-24, 24:-24] = False
    assert psnr(result[frame], truth[frame]) > psnr(blurred[frame], truth[frame]) + 0.5


def test_float_input_keeps_its_scale(astronaut: np.ndarray) -> None:
    truth, blurred = blur(astronaut, motion_psf(9, 120))
    scale = 5.0
    result = run(
        "hyper_laplacian", blurred * scale, bit_depth=32, psf="motion", length=9, angle=120
    )
    assert result.max() > 2.0
    assert psnr(result, truth * scale, peak=scale) > psnr(blurred, truth) + 1.5


@pytest.mark.realweights
def test_real_kernels_on_a_photo_crop(tmp_path: Path) -> None:
    kernels = scipy.io.loadmat(shared_file("testdata", "deblurring", "kernels", "kernels_12.mat"))
    path = sorted(shared_file("testdata", "denoising", "CBSD68").glob("*.png"))[5]
    sharp = np.asarray(PILImage.open(path).convert("RGB"), np.float32)[:184, :184] / 255
    gains: dict[str, list[float]] = {e: [] for e in ENGINES}
    for index in (0, 3, 7, 10):
        kernel = kernels["kernels"][0][index].astype(np.float64)
        kernel /= kernel.sum()
        truth, blurred = blur(sharp, kernel, seed=index)
        np.save(tmp_path / f"k{index}.npy", kernel)
        for engine in ENGINES:
            result = run(engine, blurred, kernel=str(tmp_path / f"k{index}.npy"))
            gains[engine].append(psnr(result, truth) - psnr(blurred, truth))
    assert np.mean(gains["hyper_laplacian"]) > 1.0
    for engine in ENGINES:
        assert min(gains[engine]) > -0.2, engine


# --- automatic PSF -------------------------------------------------------------------------


def test_auto_finds_motion_blur_and_gains(astronaut: np.ndarray) -> None:
    from studio.engine.device import resolve_device
    from studio.engine.ops._deblur_auto import estimate_psf

    truth, blurred = blur(astronaut, motion_psf(11, 60))
    found = estimate_psf(blurred, 0.01, "any", 31, resolve_device("cpu"))
    assert found.kernel is not None
    assert "motion" in found.description
    result = run("auto", blurred)
    assert psnr(result, truth) > psnr(blurred, truth) + 1.0


def test_auto_leaves_a_sharp_image_alone(astronaut: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    sharp = (astronaut + rng.normal(0, 0.01, astronaut.shape)).astype(np.float32)
    result = run("auto", sharp)
    assert psnr(result, astronaut) > psnr(sharp, astronaut) - 0.2


@pytest.mark.parametrize("engine", [*ENGINES, "auto"])
def test_cancel_after_first_progress(engine: str, astronaut: np.ndarray) -> None:
    image = Image(astronaut)
    request = JobRequest("deblur", JobInputs((image,)), engine=engine)
    gen = run_job(build_registry(), request, RunContext(device="cpu", tile=64))
    assert isinstance(next(gen), Progress)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.realweights
def test_real_blurred_photo_approaches_published_restoration() -> None:
    folder = shared_file("testdata", "deblurring", "levin_real_blur")

    def grey(name: str) -> np.ndarray:
        return np.asarray(PILImage.open(folder / name).convert("L"), np.float32)[..., None] / 255

    blurred, reference = grey("im01_ker01.png"), grey("im01_ker01_ircnn.png")
    result = run("hyper_laplacian", blurred, kernel=str(folder / "im01_ker01_out_kernel.png"))
    assert psnr(result, reference) > psnr(blurred, reference) + 3.0
