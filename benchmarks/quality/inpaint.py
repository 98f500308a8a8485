"""Inpaint quality: box holes of 2 to 10 % of the image (fixed seeds, `make_box_mask`) punched
into colour photographs, every built-in engine through `run_job`.

Scores inside the hole only: PSNR, and the texture ratio, the RMS of the Laplacian of the
luminance of the fill over that of the original pixels (1 = as textured as the truth; a
smearing fill scores far below). Photographs: skimage's astronaut, coffee and chelsea, plus
CBSD68 when ../shared/testdata is present. Images are scaled to at most 256 px a side, as the
PatchMatch engine searches the whole context margin on this 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage
from skimage import data

from benchmarks.quality import run_timed
from studio.core.image import Image, luminance
from studio.core.protocol import JobInputs
from studio.engine.ops.degrade import make_box_mask

ENGINES = ("patchmatch", "telea", "navier_stokes")
FRACTIONS = (0.02, 0.05, 0.10)
SIDE = 256
CBSD68 = Path(__file__).resolve().parents[2].parent / "shared/testdata/denoising/CBSD68"


def _fit(pixels: np.ndarray) -> np.ndarray:
    scale = SIDE / max(pixels.shape[:2])
    if scale < 1:
        pixels = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _photos(quick: bool) -> list[tuple[str, np.ndarray]]:
    photos = [(name, getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea")]
    if CBSD68.is_dir():
        files = sorted(CBSD68.glob("*.png"))
        files = files[:3] if quick else files[::4]
        photos += [(f.stem, np.asarray(PILImage.open(f).convert("RGB"))) for f in files]
    return [(name, _fit(np.asarray(p, np.float32) / 255)) for name, p in photos]


def _inpaint(engine: str, pixels: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    done = run_timed("inpaint", JobInputs((Image(pixels),), {"mask": mask}), engine)
    return done.image.pixels, done.wall


def _laplacian_rms(pixels: np.ndarray, hole: np.ndarray) -> float:
    laplacian = cv2.Laplacian(luminance(pixels), cv2.CV_32F)
    return float(np.sqrt(np.mean(laplacian[hole] ** 2)))


def rows(quick: bool) -> list[dict[str, object]]:
    photos = _photos(quick)
    fractions = FRACTIONS[1:2] if quick else FRACTIONS
    psnr: dict[str, list[float]] = {e: [] for e in ENGINES}
    ratio: dict[str, list[float]] = {e: [] for e in ENGINES}
    seconds = dict.fromkeys(ENGINES, 0.0)
    megapixels = 0.0
    for index, (_, truth) in enumerate(photos):
        for step, fraction in enumerate(fractions):
            mask = make_box_mask(truth.shape[:2], fraction, seed=100 * index + step)
            hole = mask > 0.5
            punched = truth.copy()
            punched[hole] = 0.5
            megapixels += truth.shape[0] * truth.shape[1] / 1e6
            for engine in ENGINES:
                result, elapsed = _inpaint(engine, punched, mask)
                seconds[engine] += elapsed
                mse = float(np.mean((np.clip(result, 0, 1)[hole] - truth[hole]) ** 2))
                psnr[engine].append(10 * np.log10(1 / mse))
                ratio[engine].append(_laplacian_rms(result, hole) / _laplacian_rms(truth, hole))
    label = f"{len(photos)} photos <= {SIDE} px, {len(fractions)} box holes each"
    telea = float(np.mean(psnr["telea"]))
    return [
        {
            "task": "inpaint",
            "engine": engine,
            "dataset": label,
            "psnr": float(np.mean(psnr[engine])),
            "target": f">= {telea - 1:.2f} dB, texture >= 0.5" if engine == "patchmatch" else "",
            "sec_per_mp": seconds[engine] / megapixels,
            "note": f"texture ratio {np.median(ratio[engine]):.2f} median, "
            f"{np.mean(ratio[engine]):.2f} mean; {_wins(psnr, engine, telea)}",
        }
        for engine in ENGINES
    ]


def _wins(psnr: dict[str, list[float]], engine: str, telea: float) -> str:
    gap = np.array(psnr[engine]) - np.array(psnr["telea"])
    return (
        f"vs Telea {float(np.mean(psnr[engine])) - telea:+.2f} dB, worst hole {gap.min():+.2f} dB"
    )
