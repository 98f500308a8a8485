"""Upscale quality: colour photographs reduced 2x, 3x and 4x with area averaging (what a bigger
sensor pixel or any editor's downscale does), enlarged back by every engine through `run_job`,
compared with the original. Bicubic (OpenCV) is the baseline; the target is the built-in's
mean gain over it at 2x.

Uses CBSD68 from ../shared/testdata when present, else scikit-image's sample photographs.
A 4-pixel border is left out of every PSNR (no method can know what lies beyond the edge).
"""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.quality import psnr, run_timed, ssim
from benchmarks.quality.denoise import clean_images
from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs
from studio.core.stored import as_image

BORDER = 4
TARGET_GAIN_2X = 0.5


def _inner(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels[BORDER:-BORDER, BORDER:-BORDER], 0.0, 1.0)


def _pair(photo: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo cropped to a multiple of `scale`, and its area-averaged reduction."""
    h, w = photo.shape[0] // scale * scale, photo.shape[1] // scale * scale
    truth = np.ascontiguousarray(photo[:h, :w])
    small = cv2.resize(truth, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    return truth, np.asarray(small, np.float32)


def _scores(results: list[np.ndarray], truths: list[np.ndarray]) -> tuple[list[float], float]:
    psnrs = [psnr(_inner(r), _inner(t)) for r, t in zip(results, truths, strict=True)]
    ssims = [ssim(_inner(r), _inner(t)) for r, t in zip(results, truths, strict=True)]
    return psnrs, float(np.mean(ssims))


def rows(quick: bool) -> list[dict[str, object]]:
    dataset, photos = clean_images(quick)
    out: list[dict[str, object]] = []
    for scale in (2,) if quick else (2, 3, 4):
        pairs = [_pair(photo, scale) for photo in photos]
        truths = [truth for truth, _ in pairs]
        label = f"{dataset} x{len(pairs)} area 1/{scale}"
        bicubic = [
            cv2.resize(small, (t.shape[1], t.shape[0]), interpolation=cv2.INTER_CUBIC)
            for t, small in pairs
        ]
        base, base_ssim = _scores(bicubic, truths)
        out.append(
            {
                "task": "upscale",
                "engine": "(bicubic)",
                "dataset": label,
                "psnr": float(np.mean(base)),
                "ssim": base_ssim,
            }
        )
        for engine in ("lanczos", "detail"):
            results, cpu, megapixels = [], 0.0, 0.0
            for _, small in pairs:
                done = run_timed(
                    "upscale",
                    JobInputs((Image(small, ImageMeta(bit_depth=8)),)),
                    engine,
                    scale=scale,
                )
                results.append(as_image(done.image).pixels)
                cpu += done.cpu
                megapixels += small.shape[0] * small.shape[1] / 1e6
            psnrs, mean_ssim = _scores(results, truths)
            gains = np.array(psnrs) - np.array(base)
            target = f"gain >= +{TARGET_GAIN_2X}" if engine == "detail" and scale == 2 else ""
            out.append(
                {
                    "task": "upscale",
                    "engine": engine,
                    "dataset": label,
                    "psnr": float(np.mean(psnrs)),
                    "ssim": mean_ssim,
                    "target": target,
                    "note": f"gain over bicubic {gains.mean():+.2f} dB "
                    f"(min {gains.min():+.2f}, max {gains.max():+.2f}); "
                    f"CPU {cpu / megapixels:.2f} s per input MP",
                }
            )
    return out
