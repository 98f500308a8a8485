"""Colorize quality on CBSD68 colour photographs, through `run_job`: grey versions with hints
on 1 % of the pixels (sampled from the true colours, fixed seed); and the grey right half of
each photo coloured from its left half as the reference photo (same scene, other content).

Skipped (no rows) when ../shared/testdata/denoising/CBSD68 is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmarks.quality import run_timed
from studio.core.image import Image, ImageMeta, luminance
from studio.core.protocol import JobInputs

SEED = 1
HINT_FRACTION = 0.01
CBSD68 = Path(__file__).resolve().parents[2].parent / "shared/testdata/denoising/CBSD68"


def _hints(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hints = np.zeros((*truth.shape[:2], 4), np.float32)
    chosen = rng.random(truth.shape[:2]) < HINT_FRACTION
    hints[chosen, :3] = truth[chosen]
    hints[chosen, 3] = 1.0
    return hints


def _colorize(grey: np.ndarray, extras: dict[str, Any]) -> tuple[np.ndarray, float]:
    inputs = JobInputs((Image(grey, ImageMeta(bit_depth=8)),), extras)
    done = run_timed("colorize", inputs, "levin")
    return done.image.pixels, done.wall


def _scores(result: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    psnr = peak_signal_noise_ratio(truth, np.clip(result, 0, 1), data_range=1.0)
    ssim = structural_similarity(truth, np.clip(result, 0, 1), data_range=1.0, channel_axis=2)
    return float(psnr), float(ssim)


def rows(quick: bool) -> list[dict[str, object]]:
    if not CBSD68.is_dir():
        return []
    files = sorted(CBSD68.glob("*.png"))
    files = files[:: max(1, len(files) // 3)][:3] if quick else files
    return _hint_rows(files) + _reference_rows(files)


def _reference_rows(files: list[Path]) -> list[dict[str, object]]:
    grey_scores, scores, gains = [], [], []
    for file in files:
        photo = np.asarray(PILImage.open(file).convert("RGB"), np.float32) / 255
        half = photo.shape[1] // 2
        reference, truth = photo[:, :half], photo[:, half:]
        grey = luminance(truth)[..., None]
        result, _ = _colorize(grey, {"reference": Image(reference)})
        grey_scores.append(_scores(np.repeat(grey, 3, axis=2), truth))
        scores.append(_scores(result, truth))
        gains.append(scores[-1][0] - grey_scores[-1][0])
    label = f"CBSD68 x{len(files)}, right half from the left half"
    worst = int(np.argmin(gains))
    return [
        _row("(grey input)", label, grey_scores),
        _row(
            "levin + reference",
            label,
            scores,
            target=">= grey + 3 dB",
            note=f"gain per image: median {np.median(gains):+.2f} dB, worst {gains[worst]:+.2f}"
            f" dB ({files[worst].stem}), {sum(g < 3 for g in gains)} of {len(gains)} below 3 dB",
        ),
    ]


def _row(
    engine: str, label: str, scores: list[tuple[float, float]], **extra: object
) -> dict[str, object]:
    """A table row: the mean PSNR and SSIM of `scores` ((psnr, ssim) per image)."""
    return {
        "task": "colorize",
        "engine": engine,
        "dataset": label,
        "psnr": float(np.mean([s[0] for s in scores])),
        "ssim": float(np.mean([s[1] for s in scores])),
        **extra,
    }


def _hint_rows(files: list[Path]) -> list[dict[str, object]]:
    rng = np.random.default_rng(SEED)
    grey_scores, scores, seconds, megapixels = [], [], 0.0, 0.0
    for file in files:
        truth = np.asarray(PILImage.open(file).convert("RGB"), np.float32) / 255
        grey = luminance(truth)[..., None]
        result, elapsed = _colorize(grey, {"hints": _hints(truth, rng)})
        seconds += elapsed
        megapixels += truth.shape[0] * truth.shape[1] / 1e6
        grey_scores.append(_scores(np.repeat(grey, 3, axis=2), truth))
        scores.append(_scores(result, truth))
    label = f"CBSD68 x{len(files)}, 1 % hints"
    return [
        _row("(grey input)", label, grey_scores),
        _row(
            "levin",
            label,
            scores,
            target=">= 33 dB",
            sec_per_mp=seconds / megapixels,
            note=f"worst image {min(s[0] for s in scores):.2f} dB",
        ),
    ]
