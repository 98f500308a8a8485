"""Tone mapping: radiance to a display image.

Reinhard (2002/2005), Drago (2003) and Mantiuk (2006) are OpenCV's implementations, run
with gamma 1 so that every operator ends with the same sRGB encoding. The local operator
follows Durand & Dorsey (2002): log luminance is split into a base layer (large-scale
illumination, here from an edge-aware guided filter, He et al. 2010, instead of the
bilateral filter, which is far slower at full resolution) and a detail layer; only the base
is compressed, so local contrast survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from studio.core.image import FloatArray, as_rgb, luminance

_FLOOR = 1e-6
_DISPLAY_STOPS = 7.0  # luminance range a display shows with visible shadow detail


@dataclass(frozen=True)
class LocalSettings:
    contrast: float  # stops of base-layer range kept
    detail: float  # gain on the detail layer
    saturation: float
    radius_fraction: float  # guided filter radius as a fraction of the long side
    edge_stops: float  # base-layer edges stronger than this (in stops) are kept sharp


def clean_radiance(pixels: FloatArray) -> FloatArray:
    """RGB radiance with NaN, infinities and negatives replaced by 0."""
    rgb = np.nan_to_num(as_rgb(pixels), nan=0.0, posinf=0.0, neginf=0.0)
    return np.asarray(np.maximum(rgb, 0.0), dtype=np.float32)


def srgb_encode(linear: FloatArray) -> FloatArray:
    """The sRGB transfer curve, on values clipped to [0, 1]."""
    x = np.clip(linear, 0.0, 1.0)
    encoded = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.asarray(encoded, dtype=np.float32)


def srgb_decode(encoded: FloatArray) -> FloatArray:
    x = np.clip(encoded, 0.0, 1.0)
    linear = np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4))
    return np.asarray(linear, dtype=np.float32)


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
    radiance: FloatArray, lum: FloatArray, new_lum: FloatArray, saturation: float
) -> FloatArray:
    ratio = np.power(radiance / lum[..., None], saturation)
    return np.asarray(ratio * new_lum[..., None], dtype=np.float32)


def display(linear: FloatArray, exposure: float) -> FloatArray:
    """Auto levels (black and white points from luminance percentiles), exposure, sRGB."""
    black, white = _robust_range(luminance(linear), 0.05, 99.5)
    scaled = (linear - np.float32(black)) * np.float32(2.0**exposure / max(white - black, 1e-6))
    return srgb_encode(scaled)


def guided_filter(guide: FloatArray, radius: int, eps: float) -> FloatArray:
    """He et al.'s guided filter of a single-channel image by itself (edge-preserving smoothing)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: npt.NDArray[np.floating[Any]]) -> FloatArray:
        return np.asarray(cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT), np.float32)

    mean = box(guide)
    var = np.maximum(box(guide * guide) - mean * mean, 0.0)
    a = var / (var + np.float32(eps))
    b = mean - a * mean
    return np.asarray(box(a) * guide + box(b), dtype=np.float32)


def local(radiance: FloatArray, settings: LocalSettings) -> FloatArray:
    """Durand–Dorsey base/detail compression; display-linear output, white near 1."""
    lum = np.maximum(luminance(radiance), _FLOOR)
    log_lum = np.log2(lum)
    radius = max(2, round(settings.radius_fraction * max(lum.shape)))
    base = guided_filter(log_lum, radius, settings.edge_stops**2)
    detail = log_lum - base
    low, high = _robust_range(base)
    factor = min(1.0, settings.contrast / max(high - low, 1e-3))
    out_log = (base - high) * factor + detail * settings.detail
    return _with_colour(radiance, lum, np.exp2(out_log), settings.saturation)


def _robust_range(values: FloatArray, low: float = 0.1, high: float = 99.9) -> tuple[float, float]:
    """Two percentiles of `values`, from a subsample when the image is large."""
    flat = values.ravel()
    step = max(1, flat.size // 1_000_000)
    lo, hi = np.percentile(flat[::step], [low, high])
    return float(lo), float(hi)
