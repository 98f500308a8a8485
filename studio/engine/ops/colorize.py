"""Built-in colorize engine: optimisation colorization from colour hints (Levin, Lischinski &
Weiss 2004), painted or taken from a colour reference photo of a similar scene (matching
brightness and texture, see `_colorize_reference`).

Colours spread from the hint pixels to neighbours of similar brightness: each pixel's chroma
is the affinity-weighted mean of its 3x3 neighbours', a sparse linear system solved once for
both chroma channels. Large photos are solved at a working size and the chroma is enlarged
with a guided filter steered by the full-size luminance. The result keeps the input's
luminance (Rec. 709) exactly; where a colour would leave the displayable range its chroma is
reduced rather than its brightness changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator

import cv2
import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.sparse.linalg import cg, spsolve

from studio.core.errors import BadInputError, MissingInputError
from studio.core.image import FloatArray, as_rgb, luminance
from studio.core.protocol import (
    HINTS,
    REFERENCE,
    EngineInput,
    EngineSpec,
    JobInputs,
    Missing,
    OpRun,
    Params,
    Progress,
    RunContext,
)
from studio.core.tiling import Tile
from studio.engine.ops._colorize_reference import reference_hints
from studio.engine.tiling import run_tiled_into

NEEDS_COLOURS = Missing(
    window="Colorize needs colours to start from: paint a few colour hints with the hint tool "
    "(I), choose a colour photo of a similar scene as the reference, or pick a colorization "
    "model in the Models panel",
    cli="give colour hints (--hints FILE, an RGBA image), a colour photo of a similar scene "
    "(--reference FILE), or a colorization model (--model FILE)",
)
NAME = "Colour hints or reference photo"
GREY_REFERENCE = "The reference photo has no colour: choose a colour photo of a similar scene"
_R, _G, _B = 0.2126, 0.7152, 0.0722
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
_GUIDE_TILE = 1024  # its row of finished tiles and working memory are 0.1 of a 100-MP photo
_DIRECT_PIXELS = 40_000
_BAND_PIXELS = 2**18  # pixels a band-by-band step works on at a time
_REFERENCE_SPACING = 6
_SEED = 0
ChromaRows = Callable[[slice], FloatArray]  # (rows, W, 2) chroma of a band of rows


class LevinParams(Params):
    sigma_floor: float = Field(
        0.01,
        ge=0.0,
        le=0.5,
        description="Smallest brightness difference (0-1) treated as an edge: higher lets "
        "colours cross faint edges",
    )
    working_megapixels: float = Field(
        0.25,
        ge=0.05,
        le=4.0,
        description="Size the colours are solved at; larger photos get their colours "
        "enlarged, guided by the photo's detail",
    )


def to_chroma(rgb: FloatArray) -> FloatArray:
    """(H, W, 2) chroma (B - Y, R - Y) of (H, W, 3) RGB, with Y the Rec. 709 luma."""
    y = luminance(rgb)
    return np.stack([rgb[..., 2] - y, rgb[..., 0] - y], axis=-1).astype(np.float32)


def compose(y: FloatArray, chroma: FloatArray, clip: bool) -> FloatArray:
    """RGB with luma exactly `y` and the given chroma; with `clip`, the chroma of colours
    outside [0, 1] is scaled down until they fit, so the luma is never changed."""
    u, v = chroma[..., 0], chroma[..., 1]
    offsets = np.stack([v, -(_R * v + _B * u) / _G, u], axis=-1)
    if clip:
        room = np.where(offsets > 0, 1.0 - y[..., None], y[..., None])
        with np.errstate(divide="ignore", invalid="ignore"):
            limit = np.where(np.abs(offsets) > 1e-12, room / np.abs(offsets), np.inf)
        scale = np.clip(limit.min(axis=-1), 0.0, 1.0)
        offsets = offsets * scale[..., None]
    return np.asarray(y[..., None] + offsets, dtype=np.float32)


def affinity_matrix(y: FloatArray, sigma_floor: float) -> sp.csr_matrix:
    """Symmetric affinities K (N x N) of each pixel to its 8 neighbours: Gaussian in their
    luminance difference, scaled by the two pixels' local variance (after Levin et al.)."""
    height, width = y.shape
    padded = np.pad(y.astype(np.float64), 1, mode="edge")
    shifted = np.stack(
        [padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _OFFSETS]
    )
    rows_idx, cols_idx = np.mgrid[0:height, 0:width]
    valid = np.stack(
        [
            (rows_idx + dy >= 0)
            & (rows_idx + dy < height)
            & (cols_idx + dx >= 0)
            & (cols_idx + dx < width)
            for dy, dx in _OFFSETS
        ]
    )
    diff2 = (shifted - y[None]) ** 2
    variance = np.concatenate([shifted, y[None].astype(np.float64)]).var(axis=0)
    nearest = np.where(valid, diff2, np.inf).min(axis=0)
    scale = np.maximum(0.6 * variance, nearest / math.log(100.0))
    scale = np.pad(np.maximum(scale, max(sigma_floor**2, 2e-6)), 1, mode="edge")
    centre = scale[1:-1, 1:-1]
    pair_scale = np.stack(
        [
            0.5 * (centre + scale[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width])
            for dy, dx in _OFFSETS
        ]
    )
    weights = np.exp(-diff2 / pair_scale)
    index = rows_idx * width + cols_idx
    neighbours = np.stack([index + dy * width + dx for dy, dx in _OFFSETS])
    keep = valid.ravel()
    rows = np.broadcast_to(index, neighbours.shape).ravel()[keep]
    size = height * width
    return sp.csr_matrix(
        (weights.ravel()[keep], (rows, neighbours.ravel()[keep])), shape=(size, size)
    )


def solve_chroma(
    y: FloatArray,
    hint_mask: np.ndarray,
    hint_chroma: FloatArray,
    sigma_floor: float,
    guess: FloatArray | None = None,
) -> FloatArray:
    """(H, W, 2) chroma equal to `hint_chroma` where `hint_mask` and, elsewhere, the
    affinity-weighted mean of each pixel's neighbours. Small images are solved directly;
    larger ones by Jacobi-preconditioned conjugate gradients from `guess`, or from the
    solution at half size when no guess is given."""
    height, width = y.shape
    known = hint_mask.ravel()
    values = hint_chroma.reshape(-1, 2).astype(np.float64)
    affinity = affinity_matrix(y, sigma_floor)
    free = np.flatnonzero(~known)
    fixed = np.flatnonzero(known)
    out = np.where(known[:, None], values, 0.0)
    if free.size == 0:
        return out.reshape(height, width, 2).astype(np.float32)
    rows = affinity[free]
    degree = np.asarray(rows.sum(axis=1)).ravel()
    system = (sp.diags(degree) - rows[:, free]).tocsr()
    rhs = rows[:, fixed] @ values[fixed]
    if free.size <= _DIRECT_PIXELS:
        out[free] = np.asarray(spsolve(system.tocsc(), rhs)).reshape(free.size, 2)
    else:
        if guess is None:
            guess = solve_chroma(*_halve(y, hint_mask, hint_chroma), sigma_floor)
            guess = np.asarray(cv2.resize(guess, (width, height)), np.float32)
        start = guess.reshape(-1, 2)[free].astype(np.float64)
        jacobi = sp.diags(1.0 / degree)
        for channel in range(2):
            out[free, channel], _ = cg(
                system, rhs[:, channel], x0=start[:, channel], M=jacobi, rtol=1e-5, maxiter=100
            )
    return out.reshape(height, width, 2).astype(np.float32)


def _halve(
    y: FloatArray, mask: np.ndarray, chroma: FloatArray
) -> tuple[FloatArray, np.ndarray, FloatArray]:
    return _shrink(y, mask, lambda rows: chroma[rows], 0.25e-6 * y.size)


def enlarged_window(small: FloatArray, size: tuple[int, int], window: Tile) -> FloatArray:
    """The `window` of `small` enlarged to `size` (height, width), sampled as
    `cv2.resize(..., INTER_LINEAR)` samples it (pixel centres aligned, edges clamped), without
    making the whole enlarged image."""
    ys, ys_next, fy = _linear_taps(size[0], small.shape[0], window.y0, window.y1)
    xs, xs_next, fx = _linear_taps(size[1], small.shape[1], window.x0, window.x1)

    def across(rows: FloatArray) -> FloatArray:
        return rows[:, xs] * (1 - fx)[None, :, None] + rows[:, xs_next] * fx[None, :, None]

    out = across(small[ys]) * (1 - fy)[:, None, None] + across(small[ys_next]) * fy[:, None, None]
    return np.asarray(out, np.float32)


def _linear_taps(
    length: int, source: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, FloatArray]:
    """Source indices either side of output samples [start, stop) and the far one's weight."""
    position = (np.arange(start, stop) + 0.5) * (source / length) - 0.5
    index = np.floor(position).astype(np.intp)
    fraction = (position - index).astype(np.float32)
    outside = (index < 0) | (index >= source - 1)
    fraction[outside] = 0.0
    index = np.clip(index, 0, source - 1)
    return index, np.minimum(index + 1, source - 1), fraction


def guided_upsample(y: FloatArray, chroma: FloatArray, radius: int) -> FloatArray:
    """Guided filter (He et al.) of (H, W, 2) chroma with the luminance `y` as guide."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(a: FloatArray) -> FloatArray:
        return np.asarray(cv2.boxFilter(a, -1, size, borderType=cv2.BORDER_REFLECT), np.float32)

    guide = y[..., None]
    mean_i = box(y)[..., None]
    var_i = box(y * y)[..., None] - mean_i**2
    mean_p = box(chroma)
    cov = box(chroma * guide) - mean_i * mean_p
    a = cov / (var_i + 1e-4)
    b = mean_p - a * mean_i
    return np.asarray(box(a) * guide + box(b), dtype=np.float32)


def _hints_of(inputs: JobInputs) -> tuple[np.ndarray, ChromaRows]:
    """The painted hints' mask (H, W) bool and their chroma, made a band of rows at a time
    (none without hints)."""
    image = inputs.image
    hints = inputs.hints
    if hints is None:
        none = np.zeros(image.pixels.shape[:2], bool)
        return none, lambda rows: np.zeros((*none[rows].shape, 2), np.float32)
    if hints.shape != (image.height, image.width, 4):
        raise BadInputError(
            f"The colour hints are {hints.shape[1]}x{hints.shape[0]} pixels but the photo is "
            f"{image.width}x{image.height}: paint the hints on this photo"
        )
    mask = hints[..., 3] > 0.5
    return mask, lambda rows: to_chroma(np.clip(hints[rows, :, :3], 0.0, 1.0))


def _with_reference_hints(
    y: FloatArray, mask: np.ndarray, chroma: FloatArray, inputs: JobInputs
) -> tuple[np.ndarray, FloatArray]:
    """The painted hints, plus hints matched from the reference photo where none is painted."""
    if inputs.reference is None:
        return mask, chroma
    reference = np.clip(as_rgb(inputs.reference.pixels), 0.0, 1.0)
    reference = _scaled_to(reference, y.size)
    reference_chroma = to_chroma(reference)
    if float(np.abs(reference_chroma).max()) < 0.02:
        raise BadInputError(GREY_REFERENCE)
    matched, matched_chroma = reference_hints(
        y, luminance(reference), reference_chroma, _REFERENCE_SPACING, _SEED
    )
    matched &= ~mask
    return mask | matched, np.where(matched[..., None], matched_chroma, chroma)


def _scaled_to(pixels: FloatArray, size: int) -> FloatArray:
    """`pixels` shrunk to about `size` pixels (never enlarged)."""
    factor = math.sqrt(size / (pixels.shape[0] * pixels.shape[1]))
    if factor >= 1.0:
        return pixels
    shape = (max(1, round(pixels.shape[1] * factor)), max(1, round(pixels.shape[0] * factor)))
    return np.asarray(cv2.resize(pixels, shape, interpolation=cv2.INTER_AREA), np.float32)


def _shrink(
    y: FloatArray, mask: np.ndarray, chroma_rows: ChromaRows, megapixels: float
) -> tuple[FloatArray, np.ndarray, FloatArray]:
    """Luminance and hints at the working size (hint chroma averaged over each cell); the
    full-size chroma is made one band and one channel at a time."""
    height, width = y.shape
    factor = math.sqrt(megapixels * 1e6 / (height * width))
    if factor >= 1.0:
        return y, mask, chroma_rows(slice(None))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small_y = np.asarray(cv2.resize(y, size, interpolation=cv2.INTER_AREA), np.float32)
    weight = mask.astype(np.float32)
    coverage = np.asarray(cv2.resize(weight, size, interpolation=cv2.INTER_AREA), np.float32)
    del weight
    summed = np.empty((size[1], size[0], 2), np.float32)
    plane = np.empty((height, width), np.float32)
    for channel in range(2):
        band = max(1, _BAND_PIXELS // width)
        for y0 in range(0, height, band):
            rows = slice(y0, y0 + band)
            plane[rows] = chroma_rows(rows)[..., channel] * mask[rows]
        summed[..., channel] = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    del plane
    small_mask = coverage > 1e-6
    small_chroma = np.where(
        small_mask[..., None], summed / np.maximum(coverage, 1e-6)[..., None], 0.0
    )
    return small_y, small_mask, np.asarray(small_chroma, np.float32)


def run_levin(inputs: JobInputs, params: LevinParams, ctx: RunContext) -> OpRun:
    image = inputs.image
    mask, hint_chroma = _hints_of(inputs)
    y = luminance(image.pixels)
    yield Progress(0, 3, "Measuring brightness similarity")
    small_y, small_mask, small_hints = _shrink(y, mask, hint_chroma, params.working_megapixels)
    shrunk = small_y.shape != y.shape
    del mask, hint_chroma, y  # the luminance is made again band by band, not kept
    if shrunk:
        ctx.log(f"Solving colours at {small_y.shape[1]}x{small_y.shape[0]}")
    if inputs.reference is not None:
        yield Progress(0, 3, "Matching the reference photo")
    small_y = np.clip(small_y, 0.0, 1.0)
    small_mask, small_hints = _with_reference_hints(small_y, small_mask, small_hints, inputs)
    if not small_mask.any():
        raise MissingInputError(NEEDS_COLOURS.window, f"{NAME}: {NEEDS_COLOURS.cli}")
    yield Progress(1, 3, "Spreading the colours")
    chroma = solve_chroma(small_y, small_mask, small_hints, params.sigma_floor)
    yield Progress(2, 3, "Composing")
    rgb = np.empty((image.height, image.width, 3), np.float32)
    if shrunk:
        enlarging = _enlarge_chroma(image.pixels, chroma, small_y.shape, rgb[..., 1:])
        yield from _in_the_last_third(enlarging)
        chroma = rgb[..., 1:]
    band = max(1, _BAND_PIXELS // image.width)
    for y0 in range(0, len(rgb), band):  # a band at a time: its temporaries are many
        rows = slice(y0, y0 + band)
        rgb[rows] = compose(luminance(image.pixels[rows]), chroma[rows], not image.meta.is_float)
    yield Progress(3, 3, "Done")
    return image.with_pixels(rgb)


def _in_the_last_third(steps: Generator[Progress, None, None]) -> Generator[Progress, None, None]:
    """`steps` shown in the last third of the bar (the first two were spent spreading)."""
    for step in steps:
        yield Progress(2 * step.total + step.done, 3 * step.total, step.message)


def _enlarge_chroma(
    pixels: FloatArray, small: FloatArray, small_shape: tuple[int, ...], out: FloatArray
) -> Generator[Progress, None, None]:
    """`small` chroma enlarged to the photo's size into `out`, by the guided filter steered by
    the photo's luminance, tile by tile (neither the luminance nor the plainly enlarged chroma
    is made at full size)."""
    size = pixels.shape[:2]
    radius = max(2, math.ceil(2 * size[0] / small_shape[0]))

    def guided(window: FloatArray, tile: Tile) -> FloatArray:
        return guided_upsample(luminance(window), enlarged_window(small, size, tile), radius)

    def into_out(top: int, rows: FloatArray) -> None:
        out[top : top + len(rows)] = rows

    yield from run_tiled_into(
        pixels, guided, into_out, _GUIDE_TILE, 4 * radius, "Enlarging the colours"
    )


ENGINES: list[EngineSpec] = [
    EngineSpec(
        task="colorize",
        id="levin",
        name=NAME,
        params=LevinParams,
        run=run_levin,
        description="Spreads the colours you paint, or those of a colour photo of a similar "
        "scene, to neighbouring pixels of similar brightness (Levin, Lischinski & Weiss 2004; "
        "Welsh et al. 2002); keeps the photo's brightness.",
        default=True,
        inputs=(EngineInput(HINTS), EngineInput(REFERENCE)),
        needs_any_input=NEEDS_COLOURS,
    )
]
