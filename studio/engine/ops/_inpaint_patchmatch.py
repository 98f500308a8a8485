"""Exemplar-based hole filling: multi-scale PatchMatch with EM voting.

After Wexler, Shechtman and Irani (2007), "Space-time completion of video", and Barnes et al.
(2009), "PatchMatch". Coarse to fine, every patch overlapping the hole is matched to a patch
lying wholly in the known region (a nearest-neighbour field found by propagation and random
search), and each hole pixel becomes the weighted vote of the source pixels its covering
patches point at. Patch distances use a PCA projection of the patches, so one comparison is a
few dozen multiply-adds however large the patch.

Everything is vectorised over the target patches with numpy; OpenCV does the filtering.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from studio.core.image import FloatArray
from studio.core.protocol import Progress

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int32]

FEATURES = 24
"""PCA components describing a patch: enough for > 95 % of the patch energy of photographs."""

FULL_SEARCH_PIXELS = 1_500_000
"""Levels larger than this skip the search: their field is the finer copy of the coarser one."""

MIN_SOURCES = 64
"""A level needs at least this many whole source patches outside the hole to search."""


@dataclass
class _Field:
    """The nearest-neighbour field of the target patches (those overlapping the hole)."""

    ty: IntArray
    tx: IntArray
    sy: IntArray
    sx: IntArray
    dist: FloatArray
    index: IntArray  # (h, w): position of each pixel in the target arrays, -1 if not a target


def fill_hole(
    pixels: FloatArray,
    hole: BoolArray,
    *,
    patch: int = 13,
    seed: int = 0,
) -> Generator[Progress, None, FloatArray]:
    """Fill `hole` (h, w) in `pixels` (h, w, c) from the rest of the image; known pixels stay."""
    rng = np.random.default_rng(seed)
    lo, scale = _value_range(pixels, hole)
    work = (pixels - lo) / scale
    channels = pixels.shape[2]
    if TEXTURE_WEIGHT:
        work = np.concatenate([work, TEXTURE_WEIGHT * _texture_features(work, hole)], axis=2)
    levels = _pyramid(work, hole, patch)
    total = len(levels)
    field: _Field | None = None
    image = work
    for number, (level_image, level_hole) in enumerate(reversed(levels)):
        yield Progress(number, total, f"Filling the hole: scale {number + 1}/{total}")
        image = level_image.copy()
        if field is None:
            image = _onion_peel(image, level_hole, patch, rng)
            field = _random_field(image, level_hole, patch, rng)
        else:
            field = _upsample_field(field, level_hole, patch, rng)
            image[level_hole] = _vote(image, level_hole, field, patch, sharp=False)
        searchable = level_hole.size <= FULL_SEARCH_PIXELS
        em_steps = _em_steps(number, total) if searchable else 0
        yield from _expectation_maximisation(image, level_hole, field, patch, em_steps, rng)
    if field is not None:
        image[hole] = _vote(image, hole, field, patch, sharp=True, mode_seeking=True)
    result = pixels.copy()
    result[hole] = image[hole][:, :channels] * scale + lo
    yield Progress(total, total, "Filling the hole")
    return result


TEXTURE_WEIGHT = 3.0
TEXTURE_WINDOW = 5


def _texture_features(image: FloatArray, hole: BoolArray) -> FloatArray:
    """Local mean absolute x and y derivatives of the grey level, from known pixels only.

    Texture features as in Newson et al. (2014): they make textured regions match textured
    sources rather than smooth ones, so the fill does not converge to a smooth average.
    """
    grey = image.mean(axis=2)
    known = (~hole).astype(np.float32)
    out = []
    for axis in (1, 0):
        diff = np.abs(np.diff(grey, axis=axis))
        both = known.take(range(1, known.shape[axis]), axis=axis) * known.take(
            range(known.shape[axis] - 1), axis=axis
        )
        pad = ((0, 0), (0, 1)) if axis == 1 else ((0, 1), (0, 0))
        diff = np.pad(diff * both, pad)
        both = np.pad(both, pad)
        size = (TEXTURE_WINDOW, TEXTURE_WINDOW)
        mean = cv2.boxFilter(diff, -1, size, normalize=False) / np.maximum(
            cv2.boxFilter(both, -1, size, normalize=False), 1.0
        )
        out.append(mean.astype(np.float32))
    return np.stack(out, axis=2)


def _em_steps(number: int, total: int) -> int:
    return 10 if number == 0 else max(2, 6 - number)


def _expectation_maximisation(
    image: FloatArray,
    hole: BoolArray,
    field: _Field,
    patch: int,
    steps: int,
    rng: np.random.Generator,
) -> Generator[Progress, None, None]:
    if steps == 0:
        return
    valid = source_mask(hole, patch)
    basis = _pca_basis(image, valid, patch, rng)
    source_features = _features(image, basis)
    for step in range(steps):
        yield Progress(step, steps, "Matching patches")
        target_features = _target_features(image, field, basis, patch)
        _search(field, valid, source_features, target_features, rng)
        image[hole] = _vote(image, hole, field, patch, sharp=True)


# --- pyramid and initialisation ---------------------------------------------------------------


def _value_range(pixels: FloatArray, hole: BoolArray) -> tuple[float, float]:
    known = pixels[~hole]
    lo, hi = np.percentile(known, [0.5, 99.5]) if known.size else (0.0, 1.0)
    return float(lo), float(max(hi - lo, 1e-6))


def _pyramid(image: FloatArray, hole: BoolArray, patch: int) -> list[tuple[FloatArray, BoolArray]]:
    """Halve until the hole spans about two patches; finest first, each with enough sources."""
    levels = [(image, hole)]
    while True:
        current, current_hole = levels[-1]
        height, width = current_hole.shape
        ys, xs = np.nonzero(current_hole)
        extent = max(np.ptp(ys), np.ptp(xs)) + 1
        if extent <= 2 * patch or min(height, width) // 2 < 4 * patch:
            break
        size = ((width + 1) // 2, (height + 1) // 2)
        smaller = np.stack(
            [
                cv2.resize(current[..., c], size, interpolation=cv2.INTER_AREA)
                for c in range(current.shape[2])
            ],
            axis=2,
        )
        smaller_hole = cv2.resize(
            current_hole.astype(np.float32), size, interpolation=cv2.INTER_AREA
        )
        coarse_hole = smaller_hole > 1e-3
        if np.count_nonzero(source_mask(coarse_hole, patch)) < MIN_SOURCES:
            break
        levels.append((smaller.astype(np.float32), coarse_hole))
    return levels


def _onion_peel(
    image: FloatArray, hole: BoolArray, patch: int, rng: np.random.Generator
) -> FloatArray:
    """Fill the hole layer by layer from its rim, each pixel from the best-matching known patch."""
    r = patch // 2
    valid = source_mask(hole, patch)
    vy, vx = np.nonzero(valid)
    if vy.size > 6000:
        pick = rng.choice(vy.size, 6000, replace=False)
        vy, vx = vy[pick], vx[pick]
    offsets = np.arange(-r, r + 1)
    oy, ox = offsets[None, :, None], offsets[None, None, :]
    channels = image.shape[2]
    sources = image[vy[:, None, None] + oy, vx[:, None, None] + ox].reshape(vy.size, -1)
    centres = image[vy, vx]
    source_energy = (sources * sources).T
    filled = np.pad(image, ((r, r), (r, r), (0, 0)), mode="reflect")
    known = np.pad(~hole, r, mode="constant", constant_values=False)
    ring = np.ones((3, 3), np.uint8)
    while not known[r:-r, r:-r].all():
        grown = cv2.dilate(known.astype(np.uint8), ring) > 0
        ly, lx = np.nonzero(grown & ~known)
        inner = (ly >= r) & (ly < known.shape[0] - r) & (lx >= r) & (lx < known.shape[1] - r)
        ly, lx = ly[inner], lx[inner]
        rows, cols = ly[:, None, None] + oy, lx[:, None, None] + ox
        target = filled[rows, cols].reshape(ly.size, -1)
        weight = np.repeat(known[rows, cols].reshape(ly.size, -1), channels, axis=1).astype(
            np.float32
        )
        cost = weight @ source_energy - 2 * (weight * target) @ sources.T
        best = np.argmin(cost, axis=1)
        filled[ly, lx] = centres[best]
        known[ly, lx] = True
    return np.asarray(filled[r:-r, r:-r], dtype=np.float32).copy()


def source_mask(hole: BoolArray, patch: int) -> BoolArray:
    """Centres of patches lying wholly inside the image and wholly outside the hole."""
    kernel = np.ones((patch, patch), np.uint8)
    touched = cv2.dilate(
        hole.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0
    )
    valid = touched == 0
    r = patch // 2
    valid[:r] = valid[-r:] = False
    valid[:, :r] = valid[:, -r:] = False
    return np.asarray(valid, dtype=bool)


def _targets(hole: BoolArray, patch: int) -> tuple[IntArray, IntArray, IntArray]:
    kernel = np.ones((patch, patch), np.uint8)
    overlaps = cv2.dilate(hole.astype(np.uint8), kernel) > 0
    ty, tx = (a.astype(np.int32) for a in np.nonzero(overlaps))
    index = np.full(hole.shape, -1, np.int32)
    index[ty, tx] = np.arange(ty.size, dtype=np.int32)
    return ty, tx, index


def _random_sources(
    valid: BoolArray, count: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    vy, vx = np.nonzero(valid)
    pick = rng.integers(0, vy.size, count)
    return vy[pick].astype(np.int32), vx[pick].astype(np.int32)


def _random_field(
    image: FloatArray, hole: BoolArray, patch: int, rng: np.random.Generator
) -> _Field:
    ty, tx, index = _targets(hole, patch)
    sy, sx = _random_sources(source_mask(hole, patch), ty.size, rng)
    return _Field(ty, tx, sy, sx, np.full(ty.size, np.inf, np.float32), index)


def _upsample_field(
    coarse: _Field, hole: BoolArray, patch: int, rng: np.random.Generator
) -> _Field:
    """Each fine target inherits its coarse parent's match, doubled, at the same sub-offset."""
    ty, tx, index = _targets(hole, patch)
    height, width = coarse.index.shape
    py = np.minimum(ty // 2, height - 1)
    px = np.minimum(tx // 2, width - 1)
    parent = coarse.index[py, px]
    has_parent = parent >= 0
    sy = np.where(has_parent, 2 * coarse.sy[parent] + (ty - 2 * py), ty).astype(np.int32)
    sx = np.where(has_parent, 2 * coarse.sx[parent] + (tx - 2 * px), tx).astype(np.int32)
    valid = source_mask(hole, patch)
    sy = np.clip(sy, 0, hole.shape[0] - 1)
    sx = np.clip(sx, 0, hole.shape[1] - 1)
    bad = ~valid[sy, sx]
    sy[bad], sx[bad] = _random_sources(valid, int(np.count_nonzero(bad)), rng)
    dist = np.where(bad, np.inf, coarse.dist[np.maximum(parent, 0)]).astype(np.float32)
    return _Field(ty, tx, sy, sx, dist, index)


# --- patch features -----------------------------------------------------------------------------


def _pca_basis(
    image: FloatArray, valid: BoolArray, patch: int, rng: np.random.Generator
) -> FloatArray:
    """The leading principal components of the source patches, shape (k, patch, patch, c)."""
    r = patch // 2
    vy, vx = np.nonzero(valid)
    pick = rng.choice(vy.size, min(vy.size, 4000), replace=False)
    offsets = np.arange(-r, r + 1)
    rows = vy[pick][:, None, None] + offsets[None, :, None]
    cols = vx[pick][:, None, None] + offsets[None, None, :]
    samples = image[rows, cols].reshape(pick.size, -1).astype(np.float64)
    samples -= samples.mean(axis=0)
    _, vectors = np.linalg.eigh(samples.T @ samples)
    k = min(FEATURES, vectors.shape[1])
    leading = vectors[:, ::-1][:, :k].T
    return leading.reshape(k, patch, patch, image.shape[2]).astype(np.float32)


def _features(image: FloatArray, basis: FloatArray) -> FloatArray:
    """Projection of the patch around every pixel on the basis, shape (h * w, k)."""
    height, width, channels = image.shape
    out = np.empty((height, width, basis.shape[0]), np.float32)
    for k in range(basis.shape[0]):
        acc = np.zeros((height, width), np.float32)
        for c in range(channels):
            acc += cv2.filter2D(
                image[..., c], cv2.CV_32F, basis[k, :, :, c], borderType=cv2.BORDER_REFLECT
            )
        out[..., k] = acc
    return np.asarray(out.reshape(height * width, -1), dtype=np.float32)


def _target_features(image: FloatArray, field: _Field, basis: FloatArray, patch: int) -> FloatArray:
    r = patch // 2
    height, width = image.shape[:2]
    y0, y1 = max(int(field.ty.min()) - r, 0), min(int(field.ty.max()) + r + 1, height)
    x0, x1 = max(int(field.tx.min()) - r, 0), min(int(field.tx.max()) + r + 1, width)
    window = _features(np.ascontiguousarray(image[y0:y1, x0:x1]), basis)
    return np.asarray(window[(field.ty - y0) * (x1 - x0) + (field.tx - x0)], dtype=np.float32)


# --- search -------------------------------------------------------------------------------------


def _search(
    field: _Field,
    valid: BoolArray,
    source_features: FloatArray,
    target_features: FloatArray,
    rng: np.random.Generator,
    rounds: int = 2,
) -> None:
    """Improve the field in place: propagation from neighbours (with jumps), then random search."""
    height, width = valid.shape
    field.dist = _distance(field.sy, field.sx, width, source_features, target_features)

    def attempt(cy: IntArray, cx: IntArray) -> None:
        cy = np.clip(cy, 0, height - 1)
        cx = np.clip(cx, 0, width - 1)
        ok = np.nonzero(valid[cy, cx])[0]
        d = _distance(cy[ok], cx[ok], width, source_features, target_features[ok])
        better = d < field.dist[ok]
        chosen = ok[better]
        field.sy[chosen] = cy[chosen]
        field.sx[chosen] = cx[chosen]
        field.dist[chosen] = d[better]

    for _ in range(rounds):
        for jump in (8, 4, 2, 1):
            for dy, dx in ((0, jump), (0, -jump), (jump, 0), (-jump, 0)):
                ny = np.clip(field.ty + dy, 0, height - 1)
                nx = np.clip(field.tx + dx, 0, width - 1)
                neighbour = field.index[ny, nx]
                has = neighbour >= 0
                n = np.maximum(neighbour, 0)
                cy = np.where(has, field.sy[n] - (ny - field.ty), -1).astype(np.int32)
                cx = np.where(has, field.sx[n] - (nx - field.tx), -1).astype(np.int32)
                attempt(cy, cx)
        radius = float(max(height, width))
        while radius >= 1:
            r = int(radius)
            attempt(
                (field.sy + rng.integers(-r, r + 1, field.sy.size)).astype(np.int32),
                (field.sx + rng.integers(-r, r + 1, field.sx.size)).astype(np.int32),
            )
            radius /= 2


def _distance(
    sy: IntArray, sx: IntArray, width: int, source_features: FloatArray, target_features: FloatArray
) -> FloatArray:
    diff = source_features[sy * width + sx] - target_features
    return np.asarray(np.einsum("ij,ij->i", diff, diff), dtype=np.float32)


# --- voting -------------------------------------------------------------------------------------


def _vote(
    image: FloatArray,
    hole: BoolArray,
    field: _Field,
    patch: int,
    *,
    sharp: bool,
    mode_seeking: bool = False,
) -> FloatArray:
    """Each hole pixel from what the patches covering it copy there.

    The weighted mean of the votes, or with `mode_seeking` their weighted mode (mean shift, as
    Wexler et al. do at the end) so that disagreeing votes give an edge rather than a blur.
    Votes are weighted by patch similarity (`sharp`) and by closeness to the hole's rim.
    """
    hy, hx = (a.astype(np.int32) for a in np.nonzero(hole))
    weight = _weights(field.dist) if sharp else np.ones(field.dist.size, np.float32)
    weight = weight * _confidence(hole)[field.ty, field.tx]
    out = np.empty((hy.size, image.shape[2]), np.float32)
    chunk = max(1, VOTE_CHUNK // (patch * patch * image.shape[2]))
    for start in range(0, hy.size, chunk):
        part = slice(start, start + chunk)
        votes, w = _gather_votes(image, hy[part], hx[part], field, patch, weight)
        out[part] = _mode(votes, w) if mode_seeking else _mean(votes, w)
    return out


VOTE_CHUNK = 4_000_000
"""Votes gathered at once (values): bounds the memory of voting on large holes."""

MEAN_SHIFT_BANDWIDTH = 0.05
MEAN_SHIFT_STEPS = 5


def _gather_votes(
    image: FloatArray,
    hy: IntArray,
    hx: IntArray,
    field: _Field,
    patch: int,
    weight: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Votes (n, patch**2, c) for the hole pixels (hy, hx) and their weights (n, patch**2)."""
    r = patch // 2
    height, width = field.index.shape
    offsets = np.arange(-r, r + 1)
    dy = np.repeat(offsets, patch)[None, :]
    dx = np.tile(offsets, patch)[None, :]
    cy, cx = hy[:, None] - dy, hx[:, None] - dx
    inside = (cy >= 0) & (cy < height) & (cx >= 0) & (cx < width)
    t = field.index[np.where(inside, cy, 0), np.where(inside, cx, 0)]
    use = inside & (t >= 0)
    t = np.where(use, t, 0)
    w = np.where(use, weight[t], 0.0).astype(np.float32)
    return image[field.sy[t] + dy, field.sx[t] + dx], w


def _mean(votes: FloatArray, w: FloatArray) -> FloatArray:
    total = np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return np.asarray(np.einsum("np,npc->nc", w, votes) / total, dtype=np.float32)


def _mode(votes: FloatArray, w: FloatArray) -> FloatArray:
    mode = _mean(votes, w)
    for _ in range(MEAN_SHIFT_STEPS):
        d2 = ((votes - mode[:, None, :]) ** 2).sum(axis=2)
        mode = _mean(votes, w * np.exp(-d2 / (2 * MEAN_SHIFT_BANDWIDTH**2)))
    return mode


GAMMA = 1.3
"""Votes of patches centred d pixels inside the hole count GAMMA**-d (Wexler et al.)."""


def _confidence(hole: BoolArray) -> FloatArray:
    inside = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    return np.maximum(np.power(GAMMA, -inside), 1e-3).astype(np.float32)


def _weights(dist: FloatArray) -> FloatArray:
    """Similarity weights exp(-d / 2 sigma^2), sigma^2 the 75th percentile of the distances."""
    finite = dist[np.isfinite(dist)]
    sigma2 = float(np.percentile(finite, 75)) if finite.size else 1.0
    similarity = np.exp(-np.minimum(dist, 1e30) / (2 * max(sigma2, 1e-12)))
    return np.maximum(similarity, 1e-6).astype(np.float32)
