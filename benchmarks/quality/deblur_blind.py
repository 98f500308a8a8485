"""Blind deblur quality: photographs blurred by real camera-shake kernels (Levin et al. 2009's
eight, the four motion kernels of kernels_12.mat) and by kernels drawn from random camera
trajectories with inertia (15 to 41 px), 'valid' convolution plus 1 % Gaussian noise. The
default deblur engine gets nothing but the photo, as `studio run deblur in.png -o out.png`.

Per case: the blurred-to-blind PSNR gain, and Levin's error ratio: MSE of the blind result
over MSE of Studio's own sparse-prior solver (`hyper_laplacian`) given the true kernel. As in
Levin et al., each result is aligned to the truth by the best whole-pixel shift (a blind
kernel is known only up to a shift) before measuring, over the frame minus SHIFT px.

The photos are CBSD68 images never used while tuning (tuning used the first four by name
order and the scikit-image test pictures). Also runs the real shaken photos of
../shared/testdata/deblurring and, where a published restoration lies beside one
(`*_ircnn.png`), reports the PSNR of the blurred photo and of Studio's result against it.

python -m benchmarks.quality --only deblur_blind [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import scipy.io
import scipy.signal
from PIL import Image as PILImage

from benchmarks.quality import run_timed
from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs
from studio.engine.psf import normalise

NOISE = 0.01
SEED = 11
SHIFT = 8
SHARED = Path(__file__).resolve().parents[2].parent / "shared/testdata"
DEBLUR = SHARED / "deblurring"
CBSD68 = SHARED / "denoising/CBSD68"
EVALUATION_PHOTOS = slice(17, None, 14)
TRAJECTORY_SIZES = (15, 23, 31, 41)
TRUE_KERNEL_SOLVER = "hyper_laplacian"


def trajectory_kernel(size: int, rng: np.random.Generator) -> np.ndarray:
    """A camera path with inertia (a random walk whose velocity keeps most of its direction
    and is pulled gently back towards the start), scaled to span `size` px, splatted
    bilinearly."""
    steps = 4000
    velocity = rng.normal(size=2)
    position = np.zeros(2)
    path = np.empty((steps, 2))
    for step in range(steps):
        velocity = 0.995 * velocity + 0.1 * rng.normal(size=2) - 0.0005 * position
        position = position + velocity / np.linalg.norm(velocity)
        path[step] = position
    path -= path.min(axis=0)
    path *= (size - 1) / max(float(path.max()), 1e-9)
    kernel = np.zeros((size, size))
    base = np.floor(path).astype(int)
    frac = path - base
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        weight = (frac[:, 0] if dy else 1 - frac[:, 0]) * (frac[:, 1] if dx else 1 - frac[:, 1])
        ys, xs = np.minimum(base[:, 0] + dy, size - 1), np.minimum(base[:, 1] + dx, size - 1)
        np.add.at(kernel, (ys, xs), weight)
    return normalise(kernel).astype(np.float64)


def kernels(quick: bool) -> list[tuple[str, np.ndarray]]:
    import h5py

    found: list[tuple[str, np.ndarray]] = []
    with h5py.File(DEBLUR / "kernels/Levin09.mat", "r") as levin:
        for index, ref in enumerate(levin["kernels"][:].ravel()):
            found.append((f"levin{index + 1}", np.asarray(levin[ref], np.float64).T))
    twelve = scipy.io.loadmat(DEBLUR / "kernels/kernels_12.mat")["kernels"][0]
    found += [(f"k12-{i + 1}", np.asarray(twelve[i], np.float64)) for i in (8, 9, 10, 11)]
    rng = np.random.default_rng(SEED)
    found += [(f"path{n}", trajectory_kernel(n, rng)) for n in TRAJECTORY_SIZES]
    found = [(name, k / k.sum()) for name, k in found]
    return found[::3] if quick else found


def photos(quick: bool) -> list[tuple[str, np.ndarray]]:
    files = sorted(CBSD68.glob("*.png"))[EVALUATION_PHOTOS][: 1 if quick else 3]
    return [(f.stem, np.asarray(PILImage.open(f).convert("RGB"), np.float32) / 255) for f in files]


def blur(sharp: np.ndarray, kernel: np.ndarray, rng: np.random.Generator):
    """(truth, blurred): 'valid' convolution per channel plus noise, cropped alike."""
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    channels = [scipy.signal.fftconvolve(sharp[..., c], kernel, mode="valid") for c in range(3)]
    blurred = np.stack(channels, axis=-1) + rng.normal(0, NOISE, (*channels[0].shape, 3))
    truth = sharp[ky : ky + blurred.shape[0], kx : kx + blurred.shape[1]]
    return truth, blurred.astype(np.float32)


def aligned_mse(result: np.ndarray, truth: np.ndarray) -> float:
    """The least MSE over whole-pixel shifts of up to SHIFT px, on the frame minus SHIFT."""
    height, width = truth.shape[:2]
    inner = truth[SHIFT : height - SHIFT, SHIFT : width - SHIFT].astype(np.float64)
    best = np.inf
    for dy in range(-SHIFT, SHIFT + 1):
        for dx in range(-SHIFT, SHIFT + 1):
            moved = result[SHIFT + dy : height - SHIFT + dy, SHIFT + dx : width - SHIFT + dx]
            best = min(best, float(np.mean((moved - inner) ** 2)))
    return best


def _db(mse: float) -> float:
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def deblurred(
    blurred: np.ndarray, engine: str | None = None, **params: object
) -> tuple[np.ndarray, float]:
    """The default engine's result (or `engine`'s), and its CPU seconds."""
    inputs = JobInputs((Image(blurred, ImageMeta(bit_depth=8)),))
    done = run_timed("deblur", inputs, engine, **params)
    return done.image.pixels, done.cpu


def synthetic_rows(quick: bool) -> list[dict[str, object]]:
    rng = np.random.default_rng(SEED)
    out: list[dict[str, object]] = []
    gains, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for photo, sharp in photos(quick):
            for name, kernel in kernels(quick):
                truth, blurred = blur(sharp, kernel, rng)
                np.save(Path(tmp) / "k.npy", kernel)
                known, _ = deblurred(blurred, TRUE_KERNEL_SOLVER, kernel=str(Path(tmp) / "k.npy"))
                blind, cpu = deblurred(blurred)
                base, mse_known, mse_blind = (
                    aligned_mse(x, truth) for x in (blurred, known, blind)
                )
                gains.append(_db(mse_blind) - _db(base))
                ratios.append(mse_blind / mse_known)
                out.append(
                    {
                        "task": "deblur",
                        "engine": "blind (default)",
                        "dataset": f"{photo} {name} {kernel.shape[0]}px",
                        "psnr": _db(mse_blind),
                        "note": f"blurred {_db(base):.2f}, true kernel {_db(mse_known):.2f}, "
                        f"gain {gains[-1]:+.2f} dB, error ratio {ratios[-1]:.2f}, "
                        f"CPU {cpu:.0f} s",
                    }
                )
    within = float(np.mean(np.array(ratios) <= 2.0))
    out.append(
        {
            "task": "deblur",
            "engine": "blind (default)",
            "dataset": f"summary of {len(gains)} cases",
            "target": "ratio<=2 on >=80 %, gain >= +2 dB, worst >= -0.2 dB",
            "note": f"ratio<=2 on {within:.0%}, mean gain {np.mean(gains):+.2f} dB, "
            f"worst {min(gains):+.2f} dB, median ratio {np.median(ratios):.2f}",
        }
    )
    return out


def real_rows(save_to: Path | None) -> list[dict[str, object]]:
    """The real shaken photos; before/after crops go to `save_to` when given."""
    out: list[dict[str, object]] = []
    files = sorted((DEBLUR / "levin_real_blur").glob("im??_ker??.png"))
    for path in [*files, DEBLUR / "nafnet_demo_blurry.jpg"]:
        pixels = np.asarray(PILImage.open(path).convert("RGB"), np.float32) / 255
        result, cpu = deblurred(pixels)
        reference = path.with_name(f"{path.stem}_ircnn.png")
        note = f"CPU {cpu:.0f} s"
        if reference.is_file():
            published = np.asarray(PILImage.open(reference).convert("RGB"), np.float32) / 255
            note += (
                f"; vs published restoration: blurred {_db(aligned_mse(pixels, published)):.2f}"
                f" dB, Studio {_db(aligned_mse(result, published)):.2f} dB"
            )
        if save_to is not None:
            side = np.concatenate([pixels, np.clip(result, 0, 1)], axis=1)
            PILImage.fromarray(np.round(side * 255).astype(np.uint8)).save(
                save_to / f"{path.stem}_before_after.png"
            )
        out.append(
            {"task": "deblur", "engine": "blind (default)", "dataset": path.name, "note": note}
        )
    return out


def rows(quick: bool) -> list[dict[str, object]]:
    if not (DEBLUR / "kernels/Levin09.mat").is_file() or not CBSD68.is_dir():
        return [{"task": "deblur", "engine": "blind", "note": "../shared/testdata missing"}]
    crops = Path(tempfile.gettempdir()) / "studio-deblur-blind"
    crops.mkdir(exist_ok=True)
    return [*synthetic_rows(quick), *real_rows(None if quick else crops)]
