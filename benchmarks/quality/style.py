"""Style quality: colour statistics transfer, histogram matching and the painterly engine on
photographs and paintings from ../shared/testdata/style_transfer (scikit-image samples
otherwise), every engine through `run_job` like the CLI.

- colour transfer: the CIELAB mean of the result within 2 ΔE (2 % of the L* range, about one
  just-noticeable difference) of the style's, and each channel's spread within 2 %.
- histogram: the largest gap between the result's and the style's quantiles (5th..95th),
  relative to the style's 5-95 % range, per channel.
- painterly: `ssim` is the SSIM of luminance edge maps (at a 512 px long side, blurred with
  sigma 2 px so brush texture does not count as structure) against the content; for scale,
  the colour transfer result (structure untouched) and the style image itself are measured
  too. Colour distance: sum over CIELAB channels of |mean difference| + |spread difference|.
  Texture distance: L1 distance between histograms of gradient orientation and of log
  gradient magnitude. Both are given for the result and for the content, against the style.
Examples are written to bench-results/style/ for looking at.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image as PILImage
from skimage import data as skdata
from skimage.metrics import structural_similarity

from benchmarks.quality import run_timed
from studio.core.image import Image, luminance
from studio.core.imageio import read_image
from studio.core.protocol import JobInputs
from studio.engine.ops import _style_color as colour

FOLDER = Path(__file__).resolve().parents[2].parent / "shared/testdata/style_transfer"
EXAMPLES = Path("bench-results/style")
PAINTERLY_PAIRS = (
    ("tubingen", "starry_night"),
    ("golden_gate", "wave_hokusai"),
    ("chicago", "the_scream"),
    ("amber", "candy"),
    ("dancing", "mosaic"),
    ("hoovertowernight", "udnie"),
)
MEASURE_SIDE = 512


def run(engine: str, content: Image, style: Image, **params: Any) -> tuple[Image, float, float]:
    """The result, wall seconds and process CPU seconds."""
    done = run_timed("style", JobInputs((content,), {"style": style}), engine, **params)
    return done.image, done.wall, done.cpu


def images(quick: bool) -> tuple[str, dict[str, Image], dict[str, Image]]:
    if FOLDER.is_dir():
        contents = {p.stem: read_image(p) for p in sorted((FOLDER / "content").glob("*.jpg"))}
        styles = {p.stem: read_image(p) for p in sorted((FOLDER / "style").glob("*.jpg"))}
        if quick:
            contents = {k: contents[k] for k in ("tubingen", "golden_gate")}
            styles = {k: styles[k] for k in ("starry_night", "wave_hokusai", "the_scream")}
        return "style_transfer", contents, styles
    photos = {"astronaut": skdata.astronaut(), "coffee": skdata.coffee()}
    samples = {k: Image(np.asarray(v, np.float32) / 255.0) for k, v in photos.items()}
    chelsea = Image(np.asarray(skdata.chelsea(), np.float32) / 255.0)
    return "skimage photos", samples, {"chelsea": chelsea, **samples}


def lab_stats(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return colour.lab_stats(colour.sample_lab(pixels))


def stats_error(result: np.ndarray, style: np.ndarray) -> tuple[float, float]:
    """Largest CIELAB mean difference (ΔE units) and largest relative spread difference."""
    (mr, sr), (ms, ss) = lab_stats(result), lab_stats(style)
    return float(np.abs(mr - ms).max()), float(np.abs(sr / ss - 1.0).max())


def quantile_gap(result: np.ndarray, style: np.ndarray) -> float:
    levels = np.linspace(0.05, 0.95, 19)
    r, s = colour.sample_lab(result).reshape(-1, 3), colour.sample_lab(style).reshape(-1, 3)
    gaps = []
    for c in range(3):
        spread = max(float(np.quantile(s[:, c], 0.95) - np.quantile(s[:, c], 0.05)), 1e-6)
        gap = np.abs(np.quantile(r[:, c], levels) - np.quantile(s[:, c], levels)).max()
        gaps.append(gap / spread)
    return float(max(gaps))


def colour_rows(
    label: str, contents: dict[str, Image], styles: dict[str, Image]
) -> list[dict[str, object]]:
    pairs = [(c, s) for c in contents.values() for s in styles.values()]
    megapixels = sum(c.megapixels for c, _ in pairs)
    out: list[dict[str, object]] = []
    errors, wall, cpu = [], 0.0, 0.0
    for content, style in pairs:
        result, w, c = run("color_transfer", content, style)
        errors.append(stats_error(result.pixels, style.pixels))
        wall, cpu = wall + w, cpu + c
    within = sum(mean <= 2.0 and spread <= 0.02 for mean, spread in errors)
    out.append(
        {
            "task": "style",
            "engine": "color_transfer",
            "dataset": f"{label} {len(pairs)} pairs",
            "target": "mean 2 ΔE, spread 2 %",
            "sec_per_mp": wall / megapixels,
            "note": f"{within}/{len(pairs)} pairs within target; worst mean "
            f"{max(e[0] for e in errors):.2f} ΔE, worst spread {max(e[1] for e in errors):.1%}"
            f"; CPU {cpu / megapixels:.2f} s/MP",
        }
    )
    gaps, wall, cpu = [], 0.0, 0.0
    for content, style in pairs:
        result, w, c = run("histogram", content, style)
        gaps.append(quantile_gap(result.pixels, style.pixels))
        wall, cpu = wall + w, cpu + c
    out.append(
        {
            "task": "style",
            "engine": "histogram",
            "dataset": f"{label} {len(pairs)} pairs",
            "sec_per_mp": wall / megapixels,
            "note": f"quantile gap median {np.median(gaps):.1%}, worst {max(gaps):.1%} of the "
            f"style's range; CPU {cpu / megapixels:.2f} s/MP",
        }
    )
    return out


def _measured(pixels: np.ndarray) -> np.ndarray:
    return colour.shrink(np.clip(pixels, 0.0, 1.0), MEASURE_SIDE)


def edges(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.GaussianBlur(luminance(rgb), (0, 0), 2.0)
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def edge_ssim(result: np.ndarray, content: np.ndarray) -> float:
    a, b = edges(_measured(result)), edges(_measured(content))
    if a.shape != b.shape:
        a = cv2.resize(a, b.shape[::-1], interpolation=cv2.INTER_AREA)
    return float(structural_similarity(a, b, data_range=float(max(a.max(), b.max()))))


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    (ma, sa), (mb, sb) = lab_stats(a), lab_stats(b)
    return float(np.abs(ma - mb).sum() + np.abs(sa - sb).sum())


def gradient_histograms(rgb: np.ndarray) -> np.ndarray:
    grey = luminance(_measured(rgb))
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    orient, _ = np.histogram(angle, bins=12, range=(0, np.pi), weights=magnitude)
    strength, _ = np.histogram(np.log10(magnitude + 1e-3), bins=16, range=(-3, 1))
    return np.concatenate([orient / orient.sum(), strength / strength.sum()])


def texture_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(gradient_histograms(a) - gradient_histograms(b)).sum())


def painterly_rows(
    label: str, contents: dict[str, Image], styles: dict[str, Image], quick: bool
) -> list[dict[str, object]]:
    pairs = [(c, s) for c, s in PAINTERLY_PAIRS if c in contents and s in styles]
    pairs = pairs or [(next(iter(contents)), next(iter(styles)))]
    pairs = pairs[:1] if quick else pairs
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    measures: dict[str, list[float]] = {k: [] for k in ("ssim", "plain", "style", "col", "tex")}
    colour_before, texture_before, wall, cpu, megapixels = [], [], 0.0, 0.0, 0.0
    for content_name, style_name in pairs:
        content, style = contents[content_name], styles[style_name]
        result, w, c = run("painterly", content, style)
        plain = run("color_transfer", content, style)[0]
        photo, painting, painted = content.pixels, style.pixels, result.pixels
        measures["ssim"].append(edge_ssim(painted, photo))
        measures["plain"].append(edge_ssim(plain.pixels, photo))
        measures["style"].append(edge_ssim(painting, photo))
        measures["col"].append(colour_distance(painted, painting))
        measures["tex"].append(texture_distance(painted, painting))
        colour_before.append(colour_distance(photo, painting))
        texture_before.append(texture_distance(photo, painting))
        wall, cpu, megapixels = wall + w, cpu + c, megapixels + content.megapixels
        _save(painted, EXAMPLES / f"{content_name}-{style_name}.jpg")
    mean = {k: float(np.mean(v)) for k, v in measures.items()}
    return [
        {
            "task": "style",
            "engine": "painterly",
            "dataset": f"{label} {len(pairs)} pairs, 512 px working size",
            "ssim": mean["ssim"],
            "target": "structure kept, colour+texture move",
            "sec_per_mp": wall / megapixels,
            "note": f"edge SSIM colour-transfer {mean['plain']:.2f} / style image "
            f"{mean['style']:.2f}; colour distance to style {mean['col']:.1f} "
            f"(photo {np.mean(colour_before):.1f}); texture distance {mean['tex']:.2f} (photo "
            f"{np.mean(texture_before):.2f}); {wall / len(pairs):.0f} s per picture, CPU "
            f"{cpu / len(pairs):.0f} s",
        }
    ]


def _save(pixels: np.ndarray, path: Path) -> None:
    rgb = np.rint(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    PILImage.fromarray(rgb).save(path, quality=92)


def large_painterly_row(contents: dict[str, Image], styles: dict[str, Image]) -> dict[str, object]:
    """The painterly engine on a 24-megapixel photo: time and peak memory."""
    content = next(iter(contents.values())).pixels
    big = Image(cv2.resize(content, (6000, 4000), interpolation=cv2.INTER_LINEAR))
    before_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    _, wall, cpu = run("painterly", big, next(iter(styles.values())))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "task": "style",
        "engine": "painterly",
        "dataset": "24 MP photo",
        "sec_per_mp": wall / 24.0,
        "note": f"completed; process peak RSS {peak_gb:.1f} GB ({before_gb:.1f} GB before); "
        f"CPU {cpu / 24.0:.2f} s/MP",
    }


def rows(quick: bool) -> list[dict[str, object]]:
    label, contents, styles = images(quick)
    out = colour_rows(label, contents, styles)
    out.extend(painterly_rows(label, contents, styles, quick))
    if not quick:
        out.append(large_painterly_row(contents, styles))
    return out
