"""Colour statistics transfer in CIELAB: Reinhard et al. (2001) and histogram matching.

CIELAB is perceptual and nearly decorrelated for natural images, which is what Reinhard's
method needs (their lαβ space serves the same purpose). Statistics come from at most about
a megapixel of each image; the fitted maps are per-pixel, so they can be applied tile by
tile to photos of any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from studio.core.image import FloatArray, as_rgb
from studio.engine.ops._hdr_tonemap import srgb_encode

F64Array = npt.NDArray[np.float64]

_STATS_PIXELS = 1_000_000
_FIT_PIXELS = 65_536
_QUANTILES = 1024
_GAMUT_PASSES = 12  # refits of the affine map after mapping into the RGB gamut
_WHITE = np.array([0.950456, 1.0, 1.088754], dtype=np.float32)  # D65, as OpenCV's RGB2Lab
_RGB_TO_XYZ = np.array(  # OpenCV's sRGB (D65) matrix
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float32,
)
_LAB_EPSILON = 0.008856
_LAB_KAPPA = 903.3
_LAB_CHUNK = 65_536
_XYZ_TO_RGB = np.array(
    [
        [3.2404542, -1.5371385, -0.4985314],
        [-0.9692660, 1.8760108, 0.0415560],
        [0.0556434, -0.2040259, 1.0572252],
    ],
    dtype=np.float32,
)


def to_lab(rgb: FloatArray) -> FloatArray:
    """sRGB in [0, 1] (grey is expanded) to CIELAB: L* in [0, 100], a* and b* about ±128.

    The CIE formulas with OpenCV's constants, evaluated exactly: OpenCV's own float
    conversion interpolates a table and is up to 0.6 a* off them (OpenCV 5.0, measured), and
    the painterly synthesis computes the same formulas in torch on the job's device. Done
    `_LAB_CHUNK` pixels at a time, so the temporaries stay small beside the result."""
    pixels = as_rgb(rgb)
    flat = pixels.reshape(-1, 3)
    out = np.empty(flat.shape, dtype=np.float32)
    for start in range(0, len(flat), _LAB_CHUNK):
        out[start : start + _LAB_CHUNK] = _lab_of(flat[start : start + _LAB_CHUNK])
    return out.reshape(pixels.shape)


def _lab_of(rgb: FloatArray) -> FloatArray:
    x = np.clip(rgb, 0.0, 1.0).astype(np.float32)
    linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    t = np.asarray(linear @ _RGB_TO_XYZ.T / _WHITE, dtype=np.float32)
    f = np.where(t > _LAB_EPSILON, np.cbrt(np.maximum(t, 0.0)), 7.787 * t + 16.0 / 116.0)
    y = t[:, 1]
    lightness = np.where(y > _LAB_EPSILON, 116.0 * f[:, 1] - 16.0, _LAB_KAPPA * y)
    return np.stack([lightness, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], axis=1)


def to_rgb(lab: FloatArray) -> FloatArray:
    """CIELAB to sRGB in [0, 1]; out-of-gamut colours lose chroma, keeping lightness and hue.

    Each colour is moved towards the grey of the same luminance in linear RGB, just far
    enough to fit, instead of clipping channels (which shifts hue and lightness).
    """
    lightness = np.clip(lab[..., 0], 0.0, 100.0)
    fy = (lightness + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE
    linear = xyz @ _XYZ_TO_RGB.T
    grey = np.clip(xyz[..., 1:2], 0.0, 1.0)
    excess = linear - grey
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(excess > 0, (1.0 - grey) / excess, np.where(excess < 0, -grey / excess, 1))
    keep = np.clip(np.nan_to_num(room.min(axis=-1, keepdims=True), nan=1.0), 0.0, 1.0)
    return srgb_encode(np.asarray(grey + keep * excess, dtype=np.float32))


def sample_lab(rgb: FloatArray, count: int = _STATS_PIXELS) -> FloatArray:
    """CIELAB of a regular subsample of at most about `count` pixels, shaped (n, 1, 3)."""
    flat = as_rgb(rgb).reshape(-1, 3)
    step = max(1, flat.shape[0] // count)
    return to_lab(np.ascontiguousarray(flat[::step, None, :]))


def lab_stats(lab: FloatArray) -> tuple[F64Array, F64Array]:
    """Per-channel mean and standard deviation."""
    pixels = lab.reshape(-1, 3).astype(np.float64)
    return pixels.mean(axis=0), pixels.std(axis=0)


def quantiles(lab: FloatArray) -> F64Array:
    """(`_QUANTILES`, 3) evenly spaced quantiles of each channel: a distribution to match."""
    levels = np.linspace(0.0, 1.0, _QUANTILES)
    return np.asarray(np.quantile(lab.reshape(-1, 3), levels, axis=0), dtype=np.float64)


def _channels(keep_lightness: bool) -> list[int]:
    return [1, 2] if keep_lightness else [0, 1, 2]


@dataclass(frozen=True)
class StatisticsMap:
    """Per-channel affine map in CIELAB: (lab - mean) * gain + centre."""

    mean: F64Array
    gain: F64Array
    centre: F64Array

    def lab(self, lab: FloatArray) -> FloatArray:
        return np.asarray((lab - self.mean) * self.gain + self.centre, dtype=np.float32)

    def __call__(self, rgb: FloatArray) -> FloatArray:
        return to_rgb(self.lab(to_lab(rgb)))


def fit_statistics(content: FloatArray, style: FloatArray, keep_lightness: bool) -> StatisticsMap:
    """Reinhard et al.: the map giving `content` the CIELAB mean and spread of `style`.

    Fitted so that the statistics match after mapping into the RGB gamut: the gamut alone
    would shrink the spread of vivid styles by up to a quarter.
    """
    target_mean, target_std = lab_stats(sample_lab(style))
    sample = sample_lab(content, _FIT_PIXELS)
    mean, std = lab_stats(sample)
    channels = _channels(keep_lightness)
    gain, centre = np.ones(3), mean.copy()
    gain[channels] = target_std[channels] / np.maximum(std[channels], 1e-6)
    centre[channels] = target_mean[channels]
    best, best_error = StatisticsMap(mean, gain.copy(), centre.copy()), np.inf
    for _ in range(_GAMUT_PASSES):
        trial = StatisticsMap(mean, gain.copy(), centre.copy())
        got_mean, got_std = lab_stats(to_lab(to_rgb(trial.lab(sample))))
        std_ratio = got_std[channels] / np.maximum(target_std[channels], 1e-6)
        mean_error = np.abs(got_mean - target_mean)[channels].max() / 100.0
        error = max(float(np.abs(std_ratio - 1.0).max()), float(mean_error))
        if error < best_error:
            best, best_error = trial, error
        if error < 0.002:
            break
        gain[channels] /= np.maximum(std_ratio, 1e-6)
        centre[channels] += target_mean[channels] - got_mean[channels]
    return best


@dataclass(frozen=True)
class QuantileMap:
    """Per-channel monotone map in CIELAB taking `source` quantiles to `target` quantiles."""

    source: F64Array
    target: F64Array
    channels: tuple[int, ...]

    def lab(self, lab: FloatArray) -> FloatArray:
        out = lab.copy()
        for c in self.channels:
            levels, first = np.unique(self.source[:, c], return_index=True)
            out[..., c] = np.interp(lab[..., c], levels, self.target[first, c])
        return out

    def __call__(self, rgb: FloatArray) -> FloatArray:
        return to_rgb(self.lab(to_lab(rgb)))


def fit_histograms(
    content: FloatArray, target: F64Array, channels: Sequence[int] = (0, 1, 2)
) -> QuantileMap:
    """The map giving each chosen CIELAB channel of `content` the distribution `target`."""
    return QuantileMap(quantiles(sample_lab(content)), target, tuple(channels))


def histogram_map(content: FloatArray, style: FloatArray, keep_lightness: bool) -> QuantileMap:
    """Histogram matching per CIELAB channel. The channels are matched independently, so
    colours the style only has at some lightness can land outside the gamut elsewhere and
    lose chroma there."""
    return fit_histograms(content, quantiles(sample_lab(style)), _channels(keep_lightness))


def shrink(pixels: npt.NDArray[Any], long_side: int) -> FloatArray:
    """Resize (area averaging) so the long side is `long_side`; never enlarges."""
    height, width = pixels.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1.0:
        return np.asarray(pixels, dtype=np.float32)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    out = cv2.resize(np.asarray(pixels, dtype=np.float32), size, interpolation=cv2.INTER_AREA)
    return np.asarray(out.reshape(size[1], size[0], -1), dtype=np.float32)
