"""Deblur quality: photographs blurred by the 12 real camera-shake kernels of kernels_12.mat
('valid' convolution, so real content lies beyond the borders) plus 1 % Gaussian noise
(fixed seed). Known-kernel engines get the true kernel as a `.npy` file, as on the CLI; the
default engine, `blind`, gets nothing and estimates the kernel. Every engine runs through `run_job`.

Uses CBSD68 photographs and kernels_12.mat from ../shared/testdata when present, else
scikit-image photographs and synthetic motion and defocus kernels.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import scipy.io
import scipy.signal
from PIL import Image as PILImage
from skimage import data as skdata

from benchmarks.quality import psnr, run_timed, ssim
from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs
from studio.engine.psf import defocus_psf, motion_psf

NOISE = 0.01
SEED = 12
SHARED = Path(__file__).resolve().parents[2].parent / "shared/testdata"
KERNELS = SHARED / "deblurring/kernels/kernels_12.mat"
CBSD68 = SHARED / "denoising/CBSD68"
ENGINES = ("wiener", "richardson_lucy", "hyper_laplacian", "blind")
BLIND = "blind"


def kernels() -> tuple[str, list[np.ndarray]]:
    if KERNELS.is_file():
        found = scipy.io.loadmat(KERNELS)["kernels"][0]
        return "kernels_12", [np.asarray(k, np.float64) / k.sum() for k in found]
    synthetic = [motion_psf(n, a) for n, a in ((9, 0), (15, 45), (21, 120))]
    return "synthetic kernels", [*synthetic, defocus_psf(2.5), defocus_psf(4.0)]


def photos(quick: bool) -> tuple[str, list[np.ndarray]]:
    if CBSD68.is_dir():
        files = sorted(CBSD68.glob("*.png"))[::17][: 2 if quick else 4]
        images = [np.asarray(PILImage.open(f).convert("RGB"), np.float32) / 255 for f in files]
        return "CBSD68", [img[:256, :256] for img in images] if quick else images
    images = [
        np.asarray(p, np.float32)[::2, ::2] / 255 for p in (skdata.astronaut(), skdata.coffee())
    ]
    return "skimage photos", [img[:192, :192] for img in images] if quick else images


def blur(sharp: np.ndarray, kernel: np.ndarray, rng: np.random.Generator):
    """(truth, blurred): 'valid' convolution per channel plus noise, cropped alike."""
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    channels = [scipy.signal.fftconvolve(sharp[..., c], kernel, mode="valid") for c in range(3)]
    blurred = np.stack(channels, axis=-1) + rng.normal(0, NOISE, (*channels[0].shape, 3))
    truth = sharp[ky : sharp.shape[0] - ky, kx : sharp.shape[1] - kx]
    return truth, blurred.astype(np.float32)


def run_engine(
    engine: str, blurred: np.ndarray, params: dict[str, object]
) -> tuple[np.ndarray, float]:
    image = Image(blurred, ImageMeta(bit_depth=8))
    done = run_timed("deblur", JobInputs((image,)), engine, **params)
    return done.image.pixels, done.wall


def rows(quick: bool) -> list[dict[str, object]]:
    kernel_set, kernel_list = kernels()
    photo_set, images = photos(quick)
    rng = np.random.default_rng(SEED)
    cases = [blur(img, k, rng) for img in images for k in kernel_list]
    label = f"{photo_set} x{len(images)}, {kernel_set}, noise 1%"
    base_psnr = [psnr(b, t) for t, b in cases]
    out: list[dict[str, object]] = [
        {
            "task": "deblur",
            "engine": "(blurred input)",
            "dataset": label,
            "psnr": float(np.mean(base_psnr)),
            "ssim": float(np.mean([ssim(np.clip(b, 0, 1), t) for t, b in cases])),
        }
    ]
    megapixels = sum(b.shape[0] * b.shape[1] for _, b in cases) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for index, kernel in enumerate(kernel_list):
            paths.append(Path(tmp) / f"kernel{index}.npy")
            np.save(paths[-1], kernel)
        kernel_paths = [p for _ in images for p in paths]
        for engine in ENGINES:
            psnrs, ssims, seconds = [], [], 0.0
            for (truth, blurred), path in zip(cases, kernel_paths, strict=True):
                params = {} if engine == BLIND else {"kernel": str(path)}
                result, elapsed = run_engine(engine, blurred, params)
                seconds += elapsed
                psnrs.append(psnr(result, truth))
                ssims.append(ssim(result, truth))
            gains = np.array(psnrs) - np.array(base_psnr)
            out.append(
                {
                    "task": "deblur",
                    "engine": f"{engine} (default)" if engine == BLIND else engine,
                    "dataset": label,
                    "psnr": float(np.mean(psnrs)),
                    "ssim": float(np.mean(ssims)),
                    "target": "gain >= +1.0 dB" if engine == "hyper_laplacian" else "worst >= -0.2",
                    "sec_per_mp": seconds / megapixels,
                    "note": f"gain {gains.mean():+.2f} dB mean, worst {gains.min():+.2f} dB",
                }
            )
    return out
