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
from studio.engine.psf import defocus_psf, gaussian_psf, load_kernel, motion_psf, save_kernel
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
    ("shape", "expected"), [((1, 9), (1, 9)), ((9, 1), (9, 1)), ((1, 1), (1, 1)), ((9,), (1, 9))]
)
@pytest.mark.parametrize("suffix", [".npy", ".png"])
def test_one_dimensional_kernels_are_accepted(
    tmp_path: Path, shape: tuple[int, ...], expected: tuple[int, int], suffix: str
) -> None:
    values = np.full(shape, 200.0)
    path = tmp_path / f"k{suffix}"
    if suffix == ".npy":
        np.save(path, values)
    elif len(shape) == 2:
        PILImage.fromarray(values.astype(np.uint8)).save(path)
    else:
        pytest.skip("an image always has two dimensions")
    kernel = load_kernel(path)
    assert kernel.shape == expected
    np.testing.assert_allclose(kernel, 1.0 / kernel.size, atol=1e-6)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares width x height gray pixels but holds no image data."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def test_huge_kernel_files_are_refused_from_their_header(tmp_path: Path) -> None:
    png = tmp_path / "bomb.png"
    _png_header_only(png, 12000, 12000)
    with pytest.raises(BadInputError, match="12000x12000 pixels; at most"):
        load_kernel(png)
    npy = tmp_path / "bomb.npy"
    with npy.open("wb") as file:
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
        np.lib.format.write_array_header_1_0(file, header)
    with pytest.raises(BadInputError, match="at most"):
        load_kernel(npy)


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


@pytest.mark.parametrize(
    ("engine", "least_gain"), [("hyper_laplacian", 4.0), ("wiener", 3.8), ("richardson_lucy", 4.5)]
)
def test_borders_of_a_one_sided_shake_gain_like_the_rest(
    engine: str, least_gain: float, astronaut: np.ndarray, tmp_path: Path
) -> None:
    """A lopsided kernel (an L-shaped path) blurs content from beyond the frame into the
    border in a way no mirrored padding reproduces; the solvers treat the padding as unknown
    rather than as data. The frame gains 4.4 dB so with the sparse prior, 4.0 with Wiener
    and 5.8 with Richardson-Lucy; with the padding as data 3.5, 3.4 and 3.6 dB, where
    streaks run across the borders."""
    kernel = np.zeros((15, 15), np.float32)
    kernel[7, 7:] = 1.0
    kernel[7:, 14] = 1.0
    np.save(tmp_path / "l.npy", kernel / kernel.sum())
    truth, blurred = blur(astronaut, kernel / kernel.sum())
    result = run(engine, blurred, kernel=str(tmp_path / "l.npy"))
    frame = np.ones(truth.shape[:2], bool)
    frame[16:-16, 16:-16] = False
    assert psnr(result[frame], truth[frame]) > psnr(blurred[frame], truth[frame]) + least_gain


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


@pytest.mark.parametrize("engine", [*ENGINES, "auto", "blind"])
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


# --- blind estimation (the default) --------------------------------------------------------


def _messages(job: object) -> tuple[list[str], np.ndarray]:
    messages = []
    while True:
        try:
            messages.append(next(job).message)  # type: ignore[call-overload]
        except StopIteration as stop:
            return messages, stop.value.pixels


def _grey(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels @ np.array([0.2126, 0.7152, 0.0722], np.float32), np.float32)


@pytest.fixture(scope="module")
def shaken() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kernel, sharp, blurred) with a Z-shaped camera shake, centred (point-symmetric) so
    that the estimate, centred on its centre of mass, is not shifted."""
    kernel = np.zeros((11, 11))
    kernel[3, 2:6] = kernel[3:8, 5] = kernel[7, 5:9] = 1.0
    kernel = kernel / kernel.sum()
    sharp = np.asarray(skdata.astronaut()[:200, 140:340], np.float32)[..., :3] / 255
    truth, blurred = blur(sharp, kernel, seed=5)
    return kernel, truth, blurred


def _aligned_ncc(estimate: np.ndarray, truth: np.ndarray) -> float:
    padded = np.pad(estimate, max(truth.shape))
    peak = scipy.signal.correlate(padded, truth, mode="valid").max()
    return float(peak / np.linalg.norm(estimate) / np.linalg.norm(truth))


def test_blind_estimate_recovers_a_known_kernel(shaken) -> None:
    from studio.engine.device import resolve_device
    from studio.engine.ops._deblur_blind import estimate_kernel

    kernel, _, blurred = shaken
    estimate = finish(estimate_kernel(_grey(blurred), 15, resolve_device("cpu")))
    assert estimate.shape == (15, 15)
    assert estimate.sum() == pytest.approx(1.0, abs=1e-5)
    assert _aligned_ncc(estimate, kernel) >= 0.8


def test_blind_keeps_the_estimate_that_explains_the_spectrum(shaken) -> None:
    from studio.engine.device import resolve_device
    from studio.engine.ops._deblur_blind_run import most_likely

    kernel, _, blurred = shaken
    true = kernel.astype(np.float32)
    wrong = [np.ascontiguousarray(true.T), np.pad(motion_psf(5, 90), 3)]
    for candidates in ([wrong[0], true], [true, *wrong], [wrong[1], true]):
        kept = most_likely(candidates, _grey(blurred), 0.01, resolve_device("cpu"))
        assert kept is true


def test_blind_default_gains_reports_and_round_trips_the_kernel(shaken, tmp_path: Path) -> None:
    _, truth, blurred = shaken
    ctx = RunContext(device="cpu")
    image = Image(blurred, ImageMeta(bit_depth=8))
    request = JobRequest("deblur", JobInputs((image,)), params={"max_size": 15})
    messages, result = _messages(run_job(build_registry(), request, ctx))
    assert psnr(result, truth) > psnr(blurred, truth) + 1.0
    width, height = ctx.report["kernel_size"]
    assert any(f"{width}x{height} px" in m for m in messages)
    reported = ctx.report["kernel"]  # trimmed to its reach around the centre, not 15 x 15
    assert reported[[0, -1]].any(axis=1).any() and reported[:, [0, -1]].any(axis=0).any()
    for name in ("k.png", "k.npy"):
        save_kernel(ctx.report["kernel"], tmp_path / name)
        again = run("hyper_laplacian", blurred, kernel=str(tmp_path / name))
        # not bit for bit: the sparse prior's shrinkage jumps at its threshold, and a kernel
        # read back from a 16-bit PNG tips ten pixels 1.5 levels (90.6 dB; 104 dB from .npy;
        # the kernel transposed or flipped: 21-26 dB)
        assert psnr(again, result) > 60.0, name


def test_the_deconvolution_after_the_estimate_counts_its_tiles_naming_the_kernel(
    shaken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the kernel is found (here handed over by a stand-in estimate that ends near a
    full bar), the bar starts over and fills through the deconvolution, one step a tile,
    and the row keeps saying which kernel is being removed."""
    from studio.engine.ops import _deblur_blind_run

    kernel = shaken[0].astype(np.float32)

    def estimate_blur(*args):  # type: ignore[no-untyped-def]
        for step in range(10):
            yield Progress(step, 10, "Estimating the blur")
        return _deblur_blind_run.BlindEstimate(np.pad(kernel, 2), "stand-in")

    monkeypatch.setattr(_deblur_blind_run, "estimate_blur", estimate_blur)
    ctx = RunContext(device="cpu", tile=64)
    request = JobRequest("deblur", JobInputs((Image(shaken[2]),)))
    steps = list(run_job(build_registry(), request, ctx))
    after = steps[max(i for i, p in enumerate(steps) if p.message.startswith("Estimating")) + 1 :]
    fractions = [p.fraction for p in after]
    assert fractions == sorted(fractions) and fractions[0] == 0.0
    assert after[-1].done == after[-1].total
    assert len({f for f in fractions if 0 < f < 1}) >= 3  # 2 x 2 tiles of a 190-px photo
    assert ctx.report["kernel_size"] == [7, 5]  # the Z, trimmed to 7 x 5 around its centre
    assert all("with the 7x5 px kernel" in p.message for p in after)
    assert after[1].message.endswith(f"tile 2/{after[1].total}")


def test_an_estimated_kernel_is_trimmed_around_its_centre() -> None:
    from studio.engine.ops._deblur_blind_run import trimmed

    kernel = np.zeros((9, 9), np.float32)
    kernel[2, 4] = kernel[4, 6] = kernel[5, 5] = 1 / 3
    np.testing.assert_array_equal(trimmed(kernel), kernel[2:7, 2:7])


def test_blind_leaves_a_sharp_photo_unchanged(astronaut: np.ndarray) -> None:
    from studio.engine.ops._deblur_blind_run import NO_BLUR_MESSAGE

    rng = np.random.default_rng(1)
    sharp = np.clip(astronaut + rng.normal(0, 0.01, astronaut.shape), 0, 1).astype(np.float32)
    request = JobRequest("deblur", JobInputs((Image(sharp),)), engine="blind")
    messages, result = _messages(run_job(build_registry(), request, RunContext(device="cpu")))
    assert messages[-1] == NO_BLUR_MESSAGE
    np.testing.assert_array_equal(result, sharp)


def test_blind_with_a_known_blur_is_the_sparse_prior_solver(astronaut: np.ndarray) -> None:
    _, blurred = blur(astronaut, motion_psf(9, 30))
    by_default = run("blind", blurred, psf="motion", length=9, angle=30)
    by_solver = run("hyper_laplacian", blurred, psf="motion", length=9, angle=30)
    np.testing.assert_array_equal(by_default, by_solver)


@pytest.mark.parametrize("truth_psf", [motion_psf(9, 90), np.ones((1, 1))])
def test_a_given_blur_the_photo_does_not_have_is_damped(
    truth_psf: np.ndarray, astronaut: np.ndarray
) -> None:
    """A 30-px horizontal motion typed in for a photo shaken vertically (or not at all):
    undamped, the sparse-prior solver rings the photo down to about 5-7 dB (measured)."""
    truth, blurred = blur(astronaut, truth_psf)
    wrong = {"psf": "motion", "length": 30, "angle": 0}
    damped = run("blind", blurred, **wrong)
    assert psnr(run("hyper_laplacian", blurred, **wrong), truth) < psnr(blurred, truth) - 15
    assert psnr(damped, truth) > psnr(blurred, truth) - 1.5


def test_cancel_stops_the_estimation(shaken, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.engine.ops import _deblur_blind

    calls = []
    latent = _deblur_blind.l0_latent
    monkeypatch.setattr(
        _deblur_blind,
        "l0_latent",
        lambda *a: calls.append(1) or latent(*a),  # type: ignore[func-returns-value]
    )
    request = JobRequest("deblur", JobInputs((Image(shaken[2]),)))
    job = run_job(build_registry(), request, RunContext(device="cpu"))
    while "Estimating the blur" not in next(job).message:
        pass
    next(job)
    job.close()
    done = len(calls)
    assert done >= 1
    with pytest.raises(StopIteration):
        next(job)
    assert len(calls) == done


@pytest.mark.parametrize("shape", [(1, 20000, 3), (20000, 1, 1), (30, 4000, 3)])
def test_blind_returns_thin_photos_unchanged_at_once(shape: tuple[int, int, int]) -> None:
    pixels = np.random.default_rng(0).random(shape, np.float32)
    np.testing.assert_array_equal(run("blind", pixels), pixels)


def test_estimation_ffts_have_smooth_sizes() -> None:
    from studio.engine.device import resolve_device
    from studio.engine.ops._deblur_blind import padded

    tensor, interior = padded(np.zeros((937, 919), np.float32), 31, resolve_device("cpu"))
    for side in tensor.shape:
        rest = side
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        assert rest == 1, side
    assert int(interior.sum()) == (937 - 30) * (919 - 30)


def test_cli_saves_the_kernel_and_reports_its_size(
    shaken, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from studio.cli.main import main

    photo, out, kernel = tmp_path / "shaken.png", tmp_path / "sharp.png", tmp_path / "k.npy"
    PILImage.fromarray(np.round(np.clip(shaken[2], 0, 1) * 255).astype(np.uint8)).save(photo)
    args = ["run", "deblur", str(photo), "-o", str(out), "--device", "cpu", "--json"]
    assert main([*args, "--param", "max_size=15", "--save-kernel", str(kernel)]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = np.load(kernel)
    rows, cols = np.nonzero(saved)
    assert final["kernel_size"] == [int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1]
    assert final["kernel_file"] == str(kernel)
    assert main([*args, "--save-kernel", str(photo)]) == 2  # never over an input


@pytest.mark.parametrize("engine", ["blind", *ENGINES, "auto"])
def test_engines_on_the_device_declare_it(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window labels an engine's device from its declaration: an engine that asks for
    the job's device must declare `uses_device`, or the window says CPU while it runs on the
    GPU."""
    import torch

    from studio.engine.ops import deblur

    asked: list[str] = []
    monkeypatch.setattr(
        deblur, "resolve_device", lambda name: asked.append(name) or torch.device("cpu")
    )
    run(engine, np.random.default_rng(0).random((40, 40, 3), np.float32))
    assert asked
    assert build_registry().get("deblur", engine).uses_device


# --- what the run functions add around the solvers ---------------------------------------


def _logged(engine: str, pixels: np.ndarray, **params: object) -> tuple[list[str], np.ndarray]:
    lines: list[str] = []
    request = JobRequest("deblur", JobInputs((Image(pixels),)), engine=engine, params=params)
    result = finish(run_job(build_registry(), request, RunContext(device="cpu", log=lines.append)))
    return lines, result.pixels


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return np.asarray(skdata.astronaut()[20:120, 150:250], np.float32) / 255


@pytest.mark.parametrize("engine", ENGINES)
def test_an_integer_photo_stays_between_black_and_white(engine: str, small: np.ndarray) -> None:
    """Deconvolving an overexposed photo overshoots its edges (float results measured: up to
    1.14-1.23, down to -0.14; 1.27-1.93 and -0.38 when the solvers fitted the mirrored
    padding): an 8-bit photo's result is clipped, a float one's is not."""
    _, blurred = blur(np.clip(small * 1.6, 0, 1), motion_psf(9, 30))
    blurred = np.clip(blurred, 0, 1)
    shake = {"psf": "motion", "length": 9, "angle": 30}
    result = run(engine, blurred, **shake)
    assert result.min() == 0.0 or engine == "richardson_lucy"  # its estimates stay positive
    assert result.max() == 1.0
    assert run(engine, blurred, bit_depth=32, **shake).max() > 1.1


def test_richardson_lucy_stops_sooner_with_more_smoothing(small: np.ndarray) -> None:
    """Smoothing scales the noise the iterations stop at. Measured mean change from the
    blurred photo (motion 9 px, 1 % noise): 0.0425 at smoothing 0.25, 0.0389 at 1, 0 at 4."""
    _, blurred = blur(small, motion_psf(9, 30))
    changes = [
        np.abs(run("richardson_lucy", blurred, psf="motion", length=9, angle=30, smoothing=s)
               - blurred).mean()
        for s in (0.25, 1.0, 4.0)
    ]  # fmt: skip
    assert changes[0] > changes[1] + 0.002
    assert changes[1] > changes[2] + 0.02


def test_only_a_blur_the_photo_lacks_is_reported_as_damped(small: np.ndarray) -> None:
    """The blind engine warns when a given blur does not match, and only then."""
    _, blurred = blur(small, motion_psf(9, 30))
    matching, _ = _logged("blind", blurred, psf="motion", length=9, angle=30)
    assert not any("does not match" in line for line in matching)
    wrong, _ = _logged("blind", blurred, psf="motion", length=30, angle=120)
    assert any("does not match" in line for line in wrong)


def test_auto_says_which_blur_it_found(small: np.ndarray) -> None:
    _, blurred = blur(small, motion_psf(11, 60))
    lines, _ = _logged("auto", blurred)
    assert any(line.startswith("Estimated blur: motion") for line in lines), lines


def test_the_tile_size_given_is_used(small: np.ndarray) -> None:
    """A tile size the user sets (for memory) splits a photo wider than four overlaps."""
    wide = np.concatenate([small, small[:, ::-1], small], axis=1)[:, :280]
    _, blurred = blur(np.concatenate([wide, wide[::-1]], axis=0)[:280], motion_psf(9, 30))
    request = JobRequest(
        "deblur",
        JobInputs((Image(blurred),)),
        engine="wiener",
        params={"psf": "motion", "length": 9, "angle": 30},
    )
    reports = list(run_job(build_registry(), request, RunContext(device="cpu", tile=64)))
    assert sum("tile" in getattr(r, "message", "") for r in reports) >= 4


def test_a_noise_level_given_on_the_0_255_scale_is_the_level_estimated(small: np.ndarray) -> None:
    """Typing the level the estimator finds (2 % noise: 5.2 on the 0-255 scale) gives the
    estimated run's result exactly; two thirds of it changes pixels by up to 0.115."""
    from studio.engine.ops._denoise_sigma import estimate_sigma

    _, blurred = blur(small, motion_psf(9, 30), noise=0.02)
    shake = {"psf": "motion", "length": 9, "angle": 30}
    estimated = run("wiener", blurred, **shake)
    given = run("wiener", blurred, noise=float(estimate_sigma(blurred) * 255), **shake)
    np.testing.assert_allclose(given, estimated, atol=1e-6)


def test_tiles_overlap_by_twice_a_long_blur() -> None:
    """A 31-px shake deconvolved in tiles (the smallest the tiling allows for it) stays close
    to the whole-frame result only if tiles overlap by twice the blur's reach: measured mean
    difference 0.0096 with the 62-px overlap, 0.020 with a fixed 32-px one."""
    sharp = np.asarray(skdata.astronaut()[:300, 100:400], np.float32) / 255
    _, blurred = blur(sharp, motion_psf(31, 30))

    def deblurred(tile: int | None) -> np.ndarray:
        request = JobRequest(
            "deblur",
            JobInputs((Image(blurred),)),
            engine="hyper_laplacian",
            params={"psf": "motion", "length": 31, "angle": 30},
        )
        context = RunContext(device="cpu", tile=tile)
        return finish(run_job(build_registry(), request, context)).pixels

    assert float(np.abs(deblurred(64) - deblurred(None)).mean()) < 0.014


def test_the_estimate_reports_its_search_then_its_check(shaken) -> None:
    """The bar moves forward through every support searched (the messages name the size
    searched, not the pyramid's scales, which start over for each support), then the
    judging of the estimate has a step of its own instead of a stalled bar."""
    from studio.engine.device import resolve_device
    from studio.engine.ops._deblur_blind_run import estimate_blur

    run = estimate_blur(shaken[2], None, 41, 0.01, resolve_device("cpu"))
    steps = []
    while True:
        try:
            steps.append(next(run))
        except StopIteration:
            break
    searching, checking = steps[:-1], steps[-1]
    fractions = [step.done / step.total for step in searching]
    assert fractions == sorted(fractions)
    assert {step.message for step in searching} == {
        "Estimating the blur, up to 41 px, coarse to fine",
        "Estimating the blur, up to 15 px, coarse to fine",
    }
    assert checking.message == "Checking the estimated blur against the photo"
