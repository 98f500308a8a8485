"""Tone mapping: radiance to a display image.

Reinhard (2002/2005), Drago (2003) and Mantiuk (2006) are OpenCV's implementations, run
with gamma 1 so that every operator ends with the same sRGB encoding. The local operator
follows Durand & Dorsey (2002): log luminance is split into a base layer (large-scale
illumination, here from an edge-aware guided filter, He et al. 2010, instead of the
bilateral filter, which is far slower at full resolution) and a detail layer; only the base
is compressed, so local contrast survives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from studio.core.image import FloatArray, as_rgb, luminance

_FLOOR = 1e-6
_CHUNK = 2**16  # values an element-wise step makes its temporaries for at a time
_DISPLAY_STOPS = 7.0  # luminance range a display shows with visible shadow detail


@dataclass(frozen=True)
class LocalSettings:
    contrast: float  # stops of base-layer range kept
    detail: float  # gain on the detail layer
    saturation: float
    radius_fraction: float  # guided filter radius as a fraction of the long side
    edge_stops: float  # base-layer edges stronger than this (in stops) are kept sharp


def clean_radiance(pixels: FloatArray) -> FloatArray:
    """RGB radiance with NaN, infinities and negatives replaced by 0 (a new array)."""
    rgb = as_rgb(pixels)
    return _chunked(_clean, rgb, out=None if rgb is pixels else rgb)


def _clean(values: FloatArray) -> npt.NDArray[Any]:
    return np.maximum(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), 0.0)


def _chunked(
    fn: Callable[[FloatArray], npt.NDArray[Any]], values: FloatArray, out: FloatArray | None
) -> FloatArray:
    """`fn` applied element-wise to `values` a chunk at a time, into `out` (may be `values`)
    or a new array, so that its temporaries never cover the whole image."""
    flat = np.ascontiguousarray(values).reshape(-1)
    result = np.empty(flat.shape, np.float32) if out is None else out.reshape(-1)
    for start in range(0, flat.size, _CHUNK):
        chunk = slice(start, start + _CHUNK)
        result[chunk] = fn(flat[chunk])
    return result.reshape(np.shape(values))


def _encode(linear: FloatArray) -> npt.NDArray[Any]:
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _decode(encoded: FloatArray) -> npt.NDArray[Any]:
    x = np.clip(encoded, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4))


def srgb_encode(linear: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """The sRGB transfer curve, on values clipped to [0, 1]; into `out` when given."""
    return _chunked(_encode, linear, out)


def srgb_decode(encoded: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """The inverse sRGB transfer curve, on values clipped to [0, 1]; into `out` when given."""
    return _chunked(_decode, encoded, out)


def _opencv(op: cv2.Tonemap, radiance: FloatArray) -> FloatArray:
    """Run an OpenCV tone mapper (which expects BGR) on RGB radiance."""
    bgr = np.ascontiguousarray(radiance[..., ::-1])
    return np.ascontiguousarray(np.asarray(op.process(bgr), dtype=np.float32)[..., ::-1])


def reinhard(
    radiance: FloatArray, intensity: float, light_adapt: float, color_adapt: float
) -> FloatArray:
    return _opencv(cv2.createTonemapReinhard(1.0, intensity, light_adapt, color_adapt), radiance)


def drago(radiance: FloatArray, saturation: float, bias: float) -> FloatArray:
    return _opencv(cv2.createTonemapDrago(1.0, saturation, bias), radiance)


def mantiuk(radiance: FloatArray, scale: float, saturation: float) -> FloatArray:
    """OpenCV's Mantiuk on luminance only (its own colour step casts red), colour re-applied.

    OpenCV returns the contrast-mapped luminance spanning some 15 stops; it is fitted to
    `_DISPLAY_STOPS` with one power curve (a linear map of log luminance), which keeps the
    relative local contrasts the operator produced.
    """
    lum = np.maximum(luminance(radiance), _FLOOR)
    grey = np.repeat(lum[..., None], 3, axis=2)
    mapped = _opencv(cv2.createTonemapMantiuk(1.0, scale, 1.0), grey)[..., 0]
    log_mapped = np.log2(np.maximum(mapped, _FLOOR))
    low, high = _robust_range(log_mapped)
    squeeze = min(1.0, _DISPLAY_STOPS / max(high - low, 1e-3))
    return _with_colour(radiance, lum, np.exp2((log_mapped - high) * squeeze), saturation)


def _with_colour(
    radiance: FloatArray,
    lum: FloatArray | None,
    new_lum: FloatArray,
    saturation: float,
    out: FloatArray | None = None,
) -> FloatArray:
    """Radiance's colour ratios to its luminance `lum` (made band by band when None), raised
    to `saturation`, times `new_lum`; a band of rows at a time, into `out` (may be `radiance`)
    or a new array."""
    out = np.empty_like(radiance) if out is None else out
    rows = max(1, _CHUNK // (3 * radiance.shape[1]))
    for top in range(0, len(radiance), rows):
        band = slice(top, top + rows)
        band_lum = _floored_luminance(radiance[band]) if lum is None else lum[band]
        ratio = np.power(radiance[band] / band_lum[..., None], saturation)
        out[band] = ratio * new_lum[band, :, None]
    return out


def _floored_luminance(radiance: FloatArray) -> FloatArray:
    return np.maximum(luminance(radiance), _FLOOR)


def display(linear: FloatArray, exposure: float) -> FloatArray:
    """Auto levels (black and white points from luminance percentiles), exposure, sRGB;
    computed in place of `linear`."""
    black, white = _robust_range(luminance(linear), 0.05, 99.5)
    gain = np.float32(2.0**exposure / max(white - black, 1e-6))

    def levels(values: FloatArray) -> npt.NDArray[Any]:
        return _encode((values - np.float32(black)) * gain)

    return _chunked(levels, linear, out=linear)


def guided_filter(guide: FloatArray, radius: int, eps: float) -> FloatArray:
    """He et al.'s guided filter of a single-channel image by itself (edge-preserving
    smoothing), holding two planes of `guide`'s size besides it (filtered in place)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: FloatArray) -> FloatArray:
        return np.asarray(cv2.boxFilter(x, -1, size, dst=x, borderType=cv2.BORDER_REFLECT))

    mean = box(guide.copy())
    a = box(_chunked(np.square, guide, None))
    eps32 = np.float32(eps)

    def slope(var: FloatArray) -> npt.NDArray[Any]:
        var = np.maximum(var, 0.0)
        return var / (var + eps32)

    for start in range(0, len(a), max(1, _CHUNK // a.shape[1])):
        band = slice(start, start + max(1, _CHUNK // a.shape[1]))
        a[band] -= np.square(mean[band])
        a[band] = slope(a[band])
        mean[band] -= a[band] * mean[band]
    filtered = box(a)
    filtered *= guide
    filtered += box(mean)
    return filtered


def local(
    radiance: FloatArray, settings: LocalSettings, out: FloatArray | None = None
) -> FloatArray:
    """Durand–Dorsey base/detail compression; display-linear output, white near 1, into
    `out` (may be `radiance`) or a new array."""
    log_lum = _floored_luminance(radiance)
    np.log2(log_lum, out=log_lum)
    radius = max(2, round(settings.radius_fraction * max(log_lum.shape)))
    base = guided_filter(log_lum, radius, settings.edge_stops**2)
    detail = np.subtract(log_lum, base, out=log_lum)
    low, high = _robust_range(base)
    factor = min(1.0, settings.contrast / max(high - low, 1e-3))
    out_log = base
    out_log -= high
    out_log *= factor
    detail *= settings.detail
    out_log += detail
    del detail
    new_lum = np.exp2(out_log, out=out_log)
    return _with_colour(radiance, None, new_lum, settings.saturation, out)


def _robust_range(values: FloatArray, low: float = 0.1, high: float = 99.9) -> tuple[float, float]:
    """Two percentiles of `values`, from a subsample when the image is large."""
    flat = values.ravel()
    step = max(1, flat.size // 1_000_000)
    lo, hi = np.percentile(flat[::step], [low, high])
    return float(lo), float(hi)
