"""HDR quality: radiance merge self-consistency on Debevec & Malik's Memorial Church brackets,
detection of swapped exposure times, recovery of a known radiance from synthetic brackets
(with and without a moving object), synthetic RAW brackets (DNG) merged in linear light,
exposure fusion, tone mapping, and a 24-megapixel fusion.

Every engine runs through `run_job`, like the CLI. The Memorial rows need ../shared/testdata;
the synthetic rows use scikit-image's sample photographs and run anywhere.

Bracket agreement: each bracket mapped through the recovered camera response, divided by its
exposure time, against the merged radiance; the median |difference| in stops over the
bracket's well-exposed pixels (0.1 < z < 0.9), after one global scale. The figure reported
is the worst bracket's median.
"""

from __future__ import annotations

import resource
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from skimage import data as skdata

from benchmarks.quality import Timed, run_timed
from studio.core.errors import BadInputError
from studio.core.image import Image, ImageMeta, luminance
from studio.core.imageio import read_image
from studio.core.protocol import JobInputs
from studio.engine.ops import _hdr_merge, _hdr_response
from studio.engine.ops._hdr_tonemap import srgb_decode
from tests.rawdata import write_bayer_dng

MEMORIAL = Path(__file__).resolve().parents[2].parent / "shared/testdata/hdr/memorial"
SYNTHETIC_TIMES = (1 / 8, 1 / 2, 2.0, 8.0)
FUSION_EVERY = 3  # the Memorial brackets are 1 stop apart: every third makes a 6-frame set


def run(engine: str, images: Sequence[Image], **params: Any) -> Timed:
    return run_timed("hdr", JobInputs(tuple(images)), engine, **params)


def memorial() -> tuple[list[Image], list[float]]:
    entries = [
        line.split()
        for line in (MEMORIAL / "image_list.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return [read_image(MEMORIAL / e[0]) for e in entries], [float(e[1]) for e in entries]


def agreement(images: Sequence[Image], times: Sequence[float], radiance: np.ndarray) -> list[float]:
    t = np.asarray(times)
    unshifted = [(0, 0)] * len(images)  # the set is registered; the merge finds no shift
    log_response = _hdr_response.calibrate_response(
        _hdr_response.calibration_images(images, unshifted), t, "debevec"
    )
    return _hdr_merge.bracket_agreement(images, t, log_response, unshifted, radiance)


def swapped_detected(images: Sequence[Image], times: Sequence[float]) -> tuple[int, int]:
    """Swap each pair of neighbouring exposure times in turn; count the swaps refused."""
    detected = 0
    for k in range(len(times) - 1):
        swapped = list(times)
        swapped[k], swapped[k + 1] = swapped[k + 1], swapped[k]
        try:
            run("merge", images, times=swapped, align=False)
        except BadInputError:
            detected += 1
    return detected, len(times) - 1


def clipped(pixels: np.ndarray) -> float:
    """Fraction of pixels blown out (a channel at white) or crushed (black)."""
    rgb = np.clip(pixels, 0.0, 1.0)
    return float(np.mean((rgb.max(axis=2) >= 0.995) | (luminance(rgb) <= 0.005)))


def _row(
    engine: str, dataset: str, timed: Timed, megapixels: float, note: str
) -> dict[str, object]:
    return {
        "task": "hdr",
        "engine": engine,
        "dataset": dataset,
        "sec_per_mp": timed.wall / megapixels,
        "note": note + timed.note(megapixels),
    }


def memorial_rows(quick: bool) -> list[dict[str, object]]:
    images, times = memorial()
    megapixels = images[0].megapixels
    label = f"Memorial x{len(images)}"
    rows: list[dict[str, object]] = []
    merges = {
        deghost: run("merge", images, times=times, deghost=deghost) for deghost in (True, False)
    }
    for deghost, timed in merges.items():
        worst = max(agreement(images, times, timed.image.pixels))
        name = "merge" + ("" if deghost else " (no deghost)")
        note = f"bracket agreement: worst median {worst:.3f} stops"
        rows.append({**_row(name, label, timed, megapixels, note), "target": "<= 0.4 stops"})
    if not quick:
        detected, pairs = swapped_detected(images, times)
        rows.append(
            {
                "task": "hdr",
                "engine": "merge (swapped times)",
                "dataset": label,
                "target": "all detected",
                "note": f"{detected}/{pairs} swaps of neighbouring times refused",
            }
        )
    subset = images[::FUSION_EVERY]
    fused = run("fusion", subset)
    least = min(clipped(im.pixels) for im in subset)
    note = f"clipped pixels {clipped(fused.image.pixels):.1%} (least of any bracket {least:.1%})"
    rows.append(_row("fusion", f"Memorial x{len(subset)} (every third)", fused, megapixels, note))
    for operator in ("local", "reinhard", "drago", "mantiuk"):
        mapped = run("tonemap", [merges[True].image], operator=operator)
        note = f"clipped pixels {clipped(mapped.image.pixels):.1%}"
        rows.append(_row(f"tonemap {operator}", "Memorial radiance", mapped, megapixels, note))
    return rows


def synthetic_scene(photo: np.ndarray) -> np.ndarray:
    """A radiance image: the photo's linear light times a 6-stop left-to-right gradient."""
    linear = srgb_decode(np.asarray(photo, np.float32) / 255.0) + 1e-3
    ramp = np.exp2(np.linspace(-4.0, 2.0, linear.shape[1], dtype=np.float32))
    return np.asarray(linear * ramp[None, :, None], dtype=np.float32)


def expose(radiance: np.ndarray, t: float, rng: np.random.Generator) -> Image:
    """An 8-bit bracket through a gamma-2.2 camera response, with slight noise."""
    z = np.clip(radiance * t, 0.0, 1.0) ** (1 / 2.2) + rng.normal(0.0, 0.002, radiance.shape)
    return Image((np.rint(np.clip(z, 0.0, 1.0) * 255) / 255).astype(np.float32), ImageMeta())


def stops_error(merged: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    diff = np.log2(np.maximum(merged, 1e-12) / truth)
    return float(np.median(np.abs(diff - np.median(diff))[mask]))


def synthetic_rows(quick: bool) -> list[dict[str, object]]:
    photos = [skdata.astronaut(), skdata.coffee()]
    photos = photos[:1] if quick else photos
    label = f"synthetic gamma brackets x{len(photos)} (skimage)"
    rows: list[dict[str, object]] = []
    for deghost in (True, False):
        errors, ghost_errors, wall, cpu, megapixels = [], [], 0.0, 0.0, 0.0
        for photo in photos:
            truth = synthetic_scene(photo)
            rng = np.random.default_rng(7)
            brackets = [expose(truth, t, rng) for t in SYNTHETIC_TIMES]
            merged = run("merge", brackets, times=list(SYNTHETIC_TIMES), deghost=deghost)
            errors.append(stops_error(merged.image.pixels, truth, np.ones(truth.shape, bool)))
            moved, square = _with_moving_square(truth, rng)
            times = list(SYNTHETIC_TIMES)
            ghosted = run("merge", moved, times=times, deghost=deghost, reference=2)
            ghost_errors.append(stops_error(ghosted.image.pixels, truth, square))
            wall, cpu = wall + merged.wall, cpu + merged.cpu
            megapixels += truth.shape[0] * truth.shape[1] / 1e6
        note = (
            f"radiance error median {np.mean(errors):.3f} stops; "
            f"where an object moved {np.mean(ghost_errors):.2f} stops"
        )
        name = "merge" + ("" if deghost else " (no deghost)")
        rows.append(_row(name, label, Timed(merged.image, wall, cpu), megapixels, note))
    return rows


def _with_moving_square(
    truth: np.ndarray, rng: np.random.Generator
) -> tuple[list[Image], np.ndarray]:
    """Brackets in which a dark square sits at a new place in every non-reference frame."""
    height, width = truth.shape[:2]
    size = height // 6
    mask = np.zeros(truth.shape, dtype=bool)
    brackets = []
    for k, t in enumerate(SYNTHETIC_TIMES):
        scene = truth.copy()
        if k != 1:  # the reference (2nd bracket) has no square: the merge must show none
            y, x = height // 4 + k * size // 2, width // 3 + k * size
            scene[y : y + size, x : x + size] /= 8.0
            mask[y + 2 : y + size - 2, x + 2 : x + size - 2] = True
        brackets.append(expose(scene, t, rng))
    return brackets, mask


RAW_TIMES = ((1, 64), (1, 16), (1, 4), (1, 1))


def raw_bracket_row() -> dict[str, object]:
    """Synthetic RAW brackets (Bayer DNGs) of a known scene, developed and merged linearly."""
    truth = synthetic_scene(skdata.astronaut())
    with tempfile.TemporaryDirectory() as folder:
        images = [
            read_image(write_bayer_dng(Path(folder) / f"b{k}.dng", truth * (n / d) / 4, (n, d)))
            for k, (n, d) in enumerate(RAW_TIMES)
        ]
    merged = run("merge", images)
    inside = np.zeros(truth.shape, bool)
    inside[4:-4, 4:-4] = True  # demosaicing touches the edge
    times = np.array([n / d for n, d in RAW_TIMES])
    linear = _hdr_response.LINEAR_LIGHT
    unshifted = [(0, 0)] * len(images)
    worst = max(_hdr_merge.bracket_agreement(images, times, linear, unshifted, merged.image.pixels))
    note = (
        f"radiance error median {stops_error(merged.image.pixels, truth, inside):.3f} stops; "
        f"bracket agreement: worst median {worst:.3f} stops"
    )
    label = f"synthetic RAW brackets x{len(RAW_TIMES)} (astronaut, DNG)"
    return {**_row("merge", label, merged, truth.shape[0] * truth.shape[1] / 1e6, note),
            "target": "<= 0.1 stops"}  # fmt: skip


def large_fusion_row() -> dict[str, object]:
    """Exposure fusion of three 24-megapixel brackets: time and peak memory."""
    rng = np.random.default_rng(3)
    base = cv2.resize(
        np.asarray(skdata.astronaut(), np.float32) / 255.0,
        (6000, 4000),
        interpolation=cv2.INTER_LINEAR,
    )
    brackets = []
    for gain in (0.4, 1.0, 2.5):
        noise = rng.normal(0, 0.003, (1, 6000, 1)).astype(np.float32)
        brackets.append(Image(np.clip(base * np.float32(gain) + noise, 0.0, 1.0)))
    del base
    before_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    fused = run("fusion", brackets)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    note = (
        f"completed; process peak RSS {peak_gb:.1f} GB ({before_gb:.1f} GB before the fusion, "
        "inputs 0.9 GB)"
    )
    return _row("fusion", "3 brackets of 24 MP", fused, 24.0, note)


def rows(quick: bool) -> list[dict[str, object]]:
    out = [*synthetic_rows(quick), raw_bracket_row()]
    if MEMORIAL.is_dir():
        out.extend(memorial_rows(quick))
    if not quick:
        out.append(large_fusion_row())
    return out
