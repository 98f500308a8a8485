"""Camera response calibration (Debevec & Malik 1997), robust to moving objects.

The response is kept as the natural log of the inverse response at the 256 levels
z = k/255, per channel, normalised to 0 at mid-grey. Linear light (a camera RAW) needs no
response: its log is taken exactly (`LINEAR_LIGHT`). The least-squares system is Debevec's;
the samples are chosen so that it sees static scene points only: pixels that get brighter
with every longer exposure, lie in flat areas, are well exposed in at least two brackets,
and span the scene's brightness range. Samples that still fit badly (a moving object the
checks missed) are dropped and the system solved again. OpenCV's `CalibrateDebevec` picks
its samples on a fixed grid and has no such guard: a few moving objects bent its curve by
half a stop; OpenCV's Robertson calibration recovered a known gamma curve ten times less
accurately than this, so it is not offered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
import scipy.sparse
import scipy.sparse.linalg

from studio.core.errors import BadInputError
from studio.core.image import FloatArray, Image, as_rgb
from studio.engine.ops._hdr_brackets import Shift
from studio.engine.ops._hdr_tonemap import srgb_decode, srgb_encode

ResponseMethod = Literal["debevec", "srgb"]
LogResponse = npt.NDArray[np.float32]  # (256, 3): ln f^-1(k / 255) per channel
LINEAR_LIGHT = None  # the response of linear pixels: ln z exactly, no table
Response = LogResponse | None
U8Array = npt.NDArray[np.uint8]

MID_GREY = 0.2140  # linear value of sRGB 0.5: where a mid-grey pixel of the reference lands
_LINEAR_FLOOR = 0.5 / 65535  # half a 16-bit level: the log of black stays finite

LEVELS = np.arange(256, dtype=np.float32) / 255.0
_WEIGHTS = np.minimum(np.arange(256), 255 - np.arange(256)).astype(np.float64)  # Debevec's hat
_SAMPLES = 200
_SMOOTHNESS = 10.0
_NOISE_LEVELS = 3  # 8-bit levels of noise tolerated by the sample checks
_WELL_EXPOSED = (13, 242)  # 0.05 < z < 0.95


def calibration_images(
    images: Sequence[Image], shifts: Sequence[Shift], max_side: int = 1024
) -> list[U8Array]:
    """Aligned, shrunk 8-bit RGB copies of the brackets for response calibration."""
    height, width = images[0].height, images[0].width
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = []
    for image, (dy, dx) in zip(images, shifts, strict=True):
        rgb: npt.NDArray[np.floating[Any]] = np.clip(as_rgb(image.pixels), 0.0, 1.0)
        if scale < 1.0:
            rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
        move = np.array([[1, 0, dx * scale], [0, 1, dy * scale]], dtype=np.float32)
        rgb = np.asarray(cv2.warpAffine(rgb, move, size, borderMode=cv2.BORDER_REPLICATE))
        small.append(np.asarray(np.rint(rgb * 255.0), dtype=np.uint8))
    return small


def calibrate_response(
    images8: Sequence[U8Array], times: npt.NDArray[np.float64], method: ResponseMethod
) -> LogResponse:
    """The log inverse camera response recovered from aligned 8-bit brackets; "srgb" is the
    known response of sRGB-encoded files: no calibration."""
    if method == "srgb":
        linear = srgb_decode(LEVELS)
        floor = 0.5 * linear[1]  # half the first level above black
        log = np.log(np.repeat(np.maximum(linear, floor)[:, None], 3, axis=1))
        return _normalise(log.astype(np.float64))
    order = np.argsort(times, kind="stable")
    stack = np.stack([images8[i] for i in order])  # (N, h, w, 3), dark to bright
    samples = _choose_samples(stack)
    if samples.size < 8:
        raise BadInputError(
            "Cannot calibrate the camera response: too few pixels are well exposed in two "
            "brackets. Use brackets that overlap in exposure"
        )
    log_t = np.log(times[order])
    columns = []
    for c in range(3):
        z = stack[:, :, :, c].reshape(len(order), -1)[:, samples].T  # (P, N)
        columns.append(_robust_solve(z.astype(np.intp), log_t))
    return _normalise(np.stack(columns, axis=1))


def _choose_samples(stack: U8Array) -> npt.NDArray[np.intp]:
    """Flat indices of up to `_SAMPLES` pixels that look like static, flat scene points."""
    brackets = stack.shape[0]
    grey = stack.astype(np.float32).mean(axis=3)  # (N, h, w)
    as_int = stack.astype(np.int16)
    monotone = np.all(np.diff(as_int, axis=0) >= -_NOISE_LEVELS, axis=(0, 3))
    low, high = _WELL_EXPOSED
    well = np.all((stack > low) & (stack < high), axis=3).sum(axis=0) >= 2
    flat = np.ones(grey.shape[1:], dtype=bool)
    for k in range(brackets):
        mean = cv2.blur(grey[k], (5, 5))
        var = cv2.blur(grey[k] * grey[k], (5, 5)) - mean * mean
        flat &= var < (2 * _NOISE_LEVELS) ** 2
    key = grey.mean(axis=0).ravel()
    for candidates in (monotone & well & flat, monotone & well, well):
        index = np.flatnonzero(candidates.ravel())
        if index.size >= _SAMPLES:
            return _stratified(index, key[index])
    return np.flatnonzero(well.ravel())


def _stratified(index: npt.NDArray[np.intp], key: FloatArray) -> npt.NDArray[np.intp]:
    """One random pick per brightness bin, so the samples span the scene's range."""
    rng = np.random.default_rng(0)
    edges = np.linspace(key.min(), key.max() + 1e-3, _SAMPLES + 1)
    bins = np.digitize(key, edges) - 1
    picks = []
    for b in np.unique(bins):
        members = index[bins == b]
        picks.append(members[rng.integers(members.size)])
    return np.asarray(picks, dtype=np.intp)


def _robust_solve(
    z: npt.NDArray[np.intp], log_t: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Debevec's g = ln f^-1 from samples z (P, N); badly fitting samples are dropped once."""
    g, log_e = _solve(z, log_t)
    w = _WEIGHTS[z]
    residual = (g[z] - log_e[:, None] - log_t[None, :]) ** 2
    rms = np.sqrt((w * residual).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9))
    keep = rms <= max(3.0 * float(np.median(rms)), 0.05)
    if keep.sum() >= 8 and not keep.all():
        g, _ = _solve(z[keep], log_t)
    return g


def _solve(
    z: npt.NDArray[np.intp], log_t: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Least squares for g(0..255) and the samples' log radiance (Debevec & Malik, eq. 3)."""
    samples, brackets = z.shape
    n_data = samples * brackets
    w = _WEIGHTS[z].ravel()
    k = np.arange(1, 255)
    smooth = _SMOOTHNESS * (_WEIGHTS[k] + 1.0)
    data_rows = np.arange(n_data)
    smooth_rows = n_data + 1 + np.arange(254)
    rows = np.concatenate([data_rows, data_rows, [n_data], np.tile(smooth_rows, 3)])
    cols = np.concatenate(
        [z.ravel(), 256 + np.repeat(np.arange(samples), brackets), [128], k - 1, k, k + 1]
    )
    vals = np.concatenate([w, -w, [1.0], smooth, -2.0 * smooth, smooth])  # g(128) = 0 fixes scale
    a = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n_data + 255, 256 + samples))
    b = np.zeros(n_data + 255)
    b[:n_data] = w * np.tile(log_t, samples)
    normal = (a.T @ a + 1e-9 * scipy.sparse.identity(256 + samples)).tocsc()
    solution = scipy.sparse.linalg.spsolve(normal, a.T @ b)
    return solution[:256], solution[256:]


def _normalise(log: npt.NDArray[np.float64]) -> LogResponse:
    """Make each channel's curve non-decreasing and 0 at mid-grey."""
    out = np.maximum.accumulate(log, axis=0)
    out -= 0.5 * (out[127] + out[128])
    return np.asarray(out, dtype=np.float32)


def apply_log_response(log_response: Response, z: FloatArray) -> FloatArray:
    """ln f^-1(z) for (..., 3) pixel values in [0, 1], interpolating between the 256 levels;
    for `LINEAR_LIGHT`, ln z exactly (0 at `MID_GREY`, as every response at mid-grey)."""
    if log_response is LINEAR_LIGHT:
        log = np.log(np.maximum(z, np.float32(_LINEAR_FLOOR)))
        return np.asarray(log - np.float32(np.log(MID_GREY)), dtype=np.float32)
    out = np.empty(z.shape, dtype=np.float32)
    for c in range(3):
        out[..., c] = np.interp(z[..., c], LEVELS, log_response[:, c])
    return out


def exposure_level(log_response: Response, z: FloatArray) -> FloatArray:
    """Where pixel values sit between black and white as a photo shows them (what the merge's
    weights judge): linear light through the sRGB curve, encoded values as they are."""
    return srgb_encode(z) if log_response is LINEAR_LIGHT else z
