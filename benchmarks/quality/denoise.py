"""Denoise quality: colour photographs with white Gaussian noise (sigma 25, fixed seed),
noise level estimated automatically, every engine through `run_job` like the CLI.

Uses CBSD68 from ../shared/testdata when present, else scikit-image's sample photographs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from skimage import data as skdata

from benchmarks.quality import psnr, run_timed, ssim
from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs
from studio.engine.ops._denoise_sigma import estimate_sigma

SIGMA = 25.0
SEED = 25
CBSD68 = Path(__file__).resolve().parents[2].parent / "shared/testdata/denoising/CBSD68"
TARGETS = {"cbm3d": ">= 29.0"}


def clean_images(quick: bool) -> tuple[str, list[np.ndarray]]:
    """Ground-truth photographs as (H, W, 3) float32 in [0, 1]."""
    if CBSD68.is_dir():
        files = sorted(CBSD68.glob("*.png"))
        files = files[:: max(1, len(files) // 8)][:8] if quick else files
        images = [np.asarray(PILImage.open(f).convert("RGB"), np.float32) / 255 for f in files]
        return "CBSD68", images
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    images = [np.asarray(p, np.float32)[::2, ::2] / 255 for p in photos]
    return "skimage photos", images[:2] if quick else images


def run_engine(engine: str, noisy: np.ndarray) -> tuple[np.ndarray, float]:
    done = run_timed("denoise", JobInputs((Image(noisy, ImageMeta(bit_depth=8)),)), engine)
    return done.image.pixels, done.wall


def rows(quick: bool) -> list[dict[str, object]]:
    dataset, images = clean_images(quick)
    rng = np.random.default_rng(SEED)
    noisy = [(img + rng.normal(0, SIGMA / 255, img.shape)).astype(np.float32) for img in images]
    label = f"{dataset} x{len(images)} sigma {SIGMA:g}"
    estimates = np.array([estimate_sigma(n) * 255 for n in noisy])
    out: list[dict[str, object]] = [
        {
            "task": "denoise",
            "engine": "(noise estimate)",
            "dataset": label,
            "note": f"estimated sigma {estimates.mean():.2f} "
            f"(min {estimates.min():.2f}, max {estimates.max():.2f}), true {SIGMA:g}",
        },
        {
            "task": "denoise",
            "engine": "(noisy input)",
            "dataset": label,
            "psnr": float(np.mean([psnr(n, c) for n, c in zip(noisy, images, strict=True)])),
            "ssim": float(
                np.mean([ssim(np.clip(n, 0, 1), c) for n, c in zip(noisy, images, strict=True)])
            ),
        },
    ]
    megapixels = sum(img.shape[0] * img.shape[1] for img in images) / 1e6
    for engine in ("gaussian", "nlm", "cbm3d"):
        psnrs, ssims, seconds = [], [], 0.0
        for clean, noise in zip(images, noisy, strict=True):
            result, elapsed = run_engine(engine, noise)
            seconds += elapsed
            psnrs.append(psnr(result, clean))
            ssims.append(ssim(result, clean))
        out.append(
            {
                "task": "denoise",
                "engine": engine,
                "dataset": label,
                "psnr": float(np.mean(psnrs)),
                "ssim": float(np.mean(ssims)),
                "target": TARGETS.get(engine, ""),
                "sec_per_mp": seconds / megapixels,
                "note": f"worst image {min(psnrs):.2f} dB",
            }
        )
    return out
