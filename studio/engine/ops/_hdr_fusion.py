"""Exposure fusion (Mertens, Kautz & Van Reeth 2007) one bracket at a time.

The same blend as OpenCV's `MergeMertens` (they agree to float rounding), but where OpenCV
holds every bracket's weights and Laplacian pyramid at once (16 times one image for three
brackets), this adds each bracket's weighted Laplacian pyramid into one result pyramid, one
colour channel at a time: beyond the brackets it holds about three images' worth (the result
pyramid, the weight sum, one bracket's weights and one channel's pyramid).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from studio.core.image import FloatArray
from studio.core.protocol import Progress
from studio.engine.ops._hdr_brackets import Shift, shifted_rows

_BAND_ROWS = 256  # rows of weights computed at a time
_WELL_EXPOSED_SPREAD = 0.08  # 2 sigma^2 of Mertens' well-exposedness Gaussian around 0.5


@dataclass(frozen=True)
class Bracket:
    """One exposure: (H, W, C) pixels in [0, 1], moved by `shift` (dy, dx) when used."""

    pixels: FloatArray
    shift: Shift = (0, 0)


@dataclass(frozen=True)
class Preferences:
    """Exponents of Mertens' three quality measures."""

    contrast: float = 1.0
    saturation: float = 1.0
    exposure: float = 1.0


def fuse(
    brackets: Sequence[Bracket], channels: int, preferences: Preferences
) -> Generator[Progress, None, FloatArray]:
    """The fused (H, W, `channels`) image in [0, 1]; grey brackets in a colour set count as
    colour. Yields Progress per bracket, twice: weighing, then blending."""
    height, width = brackets[0].pixels.shape[:2]
    steps = 2 * len(brackets)
    weight_sum = np.zeros((height, width), np.float32)
    for index, bracket in enumerate(brackets):
        yield Progress(index, steps, f"Weighing bracket {index + 1}/{len(brackets)}")
        weight_sum += _weights(bracket, channels, preferences)
    levels = int(math.log(min(height, width)) / math.log(2.0))
    result = [np.zeros((*size, channels), np.float32) for size in _sizes(height, width, levels)]
    for index, bracket in enumerate(brackets):
        yield Progress(
            len(brackets) + index, steps, f"Blending bracket {index + 1}/{len(brackets)}"
        )
        weights = _weights(bracket, channels, preferences)
        weights /= weight_sum
        weight_pyramid = _gaussian_pyramid(weights, levels)
        del weights
        for channel in range(channels):
            _add_laplacian(result, _plane(bracket, channel), weight_pyramid, channel)
    del weight_sum
    yield Progress(steps, steps, "Collapsing the pyramid")
    for level in range(levels, 0, -1):
        for channel in range(channels):
            finer = result[level - 1]
            finer[..., channel] += _up(result[level][..., channel], finer.shape[:2])
        del result[level]
    fused = result[0]
    np.clip(fused, 0.0, 1.0, out=fused)
    return fused


def _sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level, as `cv2.pyrDown` halves them."""
    sizes = [(height, width)]
    for _ in range(levels):
        height, width = (height + 1) // 2, (width + 1) // 2
        sizes.append((height, width))
    return sizes


def _gaussian_pyramid(plane: FloatArray, levels: int) -> list[FloatArray]:
    pyramid = [plane]
    for _ in range(levels):
        pyramid.append(np.asarray(cv2.pyrDown(pyramid[-1]), np.float32))
    return pyramid


def _up(plane: FloatArray, size: tuple[int, int]) -> FloatArray:
    return np.asarray(
        cv2.pyrUp(np.ascontiguousarray(plane), dstsize=(size[1], size[0])), np.float32
    )


def _add_laplacian(
    result: list[FloatArray], plane: FloatArray, weights: list[FloatArray], channel: int
) -> None:
    """Add `plane`'s Laplacian pyramid, each level times `weights`' level, into `result`."""
    pyramid = _gaussian_pyramid(plane, len(weights) - 1)
    for level, (gaussian, weight) in enumerate(zip(pyramid, weights, strict=True)):
        if level + 1 < len(pyramid):
            detail = _up(pyramid[level + 1], gaussian.shape)
            np.subtract(gaussian, detail, out=detail)
        else:
            detail = gaussian.copy()
        detail *= weight
        result[level][..., channel] += detail


def _plane(bracket: Bracket, channel: int) -> FloatArray:
    """One colour channel of the moved bracket, contiguous (a grey bracket's only one)."""
    pixels = bracket.pixels
    channel = min(channel, pixels.shape[2] - 1)
    if bracket.shift == (0, 0):
        return np.ascontiguousarray(pixels[..., channel])
    height = pixels.shape[0]
    plane = np.empty(pixels.shape[:2], np.float32)
    for y0 in range(0, height, _BAND_ROWS):
        y1 = min(height, y0 + _BAND_ROWS)
        plane[y0:y1] = shifted_rows(pixels, bracket.shift, y0, y1)[0][..., channel]
    return plane


def _weights(bracket: Bracket, channels: int, preferences: Preferences) -> FloatArray:
    """Mertens' weight of every pixel of the bracket, band by band (with a row either side
    for the Laplacian, so the bands join exactly)."""
    height, width = bracket.pixels.shape[:2]
    weights = np.empty((height, width), np.float32)
    for y0 in range(0, height, _BAND_ROWS):
        y1 = min(height, y0 + _BAND_ROWS)
        top, bottom = max(0, y0 - 1), min(height, y1 + 1)
        block = _rows(bracket, top, bottom, channels)
        weights[y0:y1] = _quality(block, preferences)[y0 - top : y1 - top]
    return weights


def _rows(bracket: Bracket, y0: int, y1: int, channels: int) -> FloatArray:
    if bracket.shift == (0, 0):
        block = bracket.pixels[y0:y1]
    else:
        block = shifted_rows(bracket.pixels, bracket.shift, y0, y1)[0]
    if block.shape[2] != channels:
        block = np.repeat(block, channels, axis=2)
    return np.ascontiguousarray(block)


def _quality(block: FloatArray, preferences: Preferences) -> FloatArray:
    """Contrast (|Laplacian| of grey) x saturation (spread of the channels, colour only) x
    well-exposedness (closeness of every channel to 0.5), each raised to its preference."""
    colour = block.shape[2] == 3
    grey = cv2.cvtColor(block, cv2.COLOR_RGB2GRAY) if colour else block[..., 0]
    weight = np.abs(np.asarray(cv2.Laplacian(grey, cv2.CV_32F), np.float32))
    _power(weight, preferences.contrast)
    if colour:
        mean = block.mean(axis=2, dtype=np.float32)
        saturation = np.sqrt(((block - mean[..., None]) ** 2).sum(axis=2, dtype=np.float32))
        weight *= _power(saturation, preferences.saturation)
    exposed = np.exp(-((block - np.float32(0.5)) ** 2) / np.float32(_WELL_EXPOSED_SPREAD))
    weight *= _power(np.prod(exposed, axis=2, dtype=np.float32), preferences.exposure)
    weight += np.float32(1e-12)
    return weight


def _power(values: FloatArray, exponent: float) -> FloatArray:
    if exponent != 1.0:
        np.power(values, np.float32(exponent), out=values)
    return values
