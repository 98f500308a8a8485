"""Turning Studio images into screen pixels (8-bit BGRA), off the GUI thread.

Integer-sourced images are shown as they are. Linear light (float radiance maps, a camera
RAW) is shown through the sRGB curve, and tone-mapped when values exceed 1 (global Reinhard on
luminance, then sRGB encoding); for display only: the pixels that are exported are never
touched.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage

from studio.core.image import FloatArray, Image, luminance

THUMBNAIL_SIZE = 96
_STATS_SAMPLES = 512
_BAND_ROWS = 128


def to_bgra(image: Image) -> np.ndarray:
    """(H, W, 4) uint8 BGRA for `QImage.Format_RGB32`; alpha is opaque."""
    linear = image.meta.is_float or image.meta.is_linear_photo
    return pixels_to_bgra(image.pixels, hdr=linear)


def pixels_to_bgra(pixels: FloatArray, hdr: bool = False) -> np.ndarray:
    """8-bit BGRA of (H, W, 1|3) pixels; OpenCV does the work with the GIL released. `hdr`
    pixels are linear light (radiance, a RAW): tone-mapped when some exceed 1, else shown
    through the sRGB curve."""
    if hdr and _exceeds_one(pixels):
        eight_bit = tone_map(pixels)
    elif hdr:
        eight_bit = _srgb_eight_bit(pixels)
    else:
        _, positive = cv2.threshold(pixels, 0.0, 0.0, cv2.THRESH_TOZERO)  # NaN becomes 0 too
        eight_bit = cv2.convertScaleAbs(positive, alpha=255.0)
    code = cv2.COLOR_RGB2BGRA if pixels.shape[2] == 3 else cv2.COLOR_GRAY2BGRA
    return np.asarray(cv2.cvtColor(eight_bit, code))


def _srgb_eight_bit(linear: FloatArray) -> np.ndarray:
    """8-bit sRGB of linear pixels in [0, 1], encoded a band of rows at a time."""
    eight_bit = np.empty(linear.shape, dtype=np.uint8)
    top_index = np.float32(_LUT_SIZE - 1)
    for top in range(0, linear.shape[0], _BAND_ROWS):
        band = np.nan_to_num(linear[top : top + _BAND_ROWS]) * top_index
        np.clip(np.rint(band, out=band), 0.0, top_index, out=band)
        eight_bit[top : top + _BAND_ROWS] = _SRGB_LUT[band.astype(np.uint16)]
    return eight_bit


def _sample(pixels: FloatArray) -> FloatArray:
    step = max(1, max(pixels.shape[0], pixels.shape[1]) // _STATS_SAMPLES)
    return pixels[::step, ::step]


def _exceeds_one(pixels: FloatArray) -> bool:
    return bool(np.nanmax(_sample(pixels)) > 1.0)


def tone_map(pixels: FloatArray) -> np.ndarray:
    """8-bit display pixels: global Reinhard on luminance (key 0.18), then sRGB encoding."""
    sample = np.maximum(np.nan_to_num(luminance(_sample(pixels))), 0.0)
    scale = 0.18 / max(float(np.exp(np.mean(np.log(1e-6 + sample)))), 1e-6)
    white2 = max(float(np.max(sample)) * scale, 1e-3) ** 2
    out = np.empty(pixels.shape, dtype=np.uint8)
    for top in range(0, pixels.shape[0], _BAND_ROWS):
        band = np.nan_to_num(np.maximum(pixels[top : top + _BAND_ROWS], 0.0))
        # Reinhard with a white point: L' = sL (1 + sL / w^2) / (1 + sL); pixels scale by L'/L.
        scaled = luminance(band) * np.float32(scale)
        ratio = np.float32(scale * (_LUT_SIZE - 1)) * (1 + scaled / np.float32(white2))
        ratio /= 1 + scaled
        index = np.minimum(band * ratio[..., None], np.float32(_LUT_SIZE - 1))
        out[top : top + _BAND_ROWS] = _SRGB_LUT[index.astype(np.uint16)]
    return out


def _srgb_lut(size: int) -> np.ndarray:
    linear = np.linspace(0.0, 1.0, size)
    encoded = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.asarray(np.round(encoded * 255.0), dtype=np.uint8)


_LUT_SIZE = 4096
_SRGB_LUT = _srgb_lut(_LUT_SIZE)


def thumbnail(bgra: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """A small copy (longest side <= `size`) by strided sampling: cheap at any image size."""
    step = max(1, -(-max(bgra.shape[0], bgra.shape[1]) // size))
    return np.ascontiguousarray(bgra[::step, ::step])


def to_qimage(bgra: np.ndarray) -> QImage:
    """Wrap BGRA pixels without copying; the QImage keeps the array alive."""
    array = np.ascontiguousarray(bgra)
    height, width = array.shape[:2]
    qimage = QImage(array.data, width, height, width * 4, QImage.Format.Format_RGB32)
    qimage._keepalive = array  # type: ignore[attr-defined]
    return qimage


MASK_COLOURS = ((255, 48, 64), (40, 220, 80), (40, 120, 255), (255, 220, 0), (230, 40, 230))
"""Overlay colours for the mask: red, green, blue, yellow, magenta (RGB)."""


def contrasting_colour(bgra: np.ndarray) -> tuple[int, int, int]:
    """The mask colour that stands out most on a picture (its display pixels, e.g. a thumbnail):
    the one whose nearest 5 % of the picture's pixels are farthest from it."""
    rgb = bgra[..., 2::-1].reshape(-1, 3).astype(np.float32)

    def separation(colour: tuple[int, int, int]) -> float:
        distances = np.linalg.norm(rgb - np.asarray(colour, np.float32), axis=1)
        return float(np.percentile(distances, 5))

    return max(MASK_COLOURS, key=separation)
