"""Exposure fusion (Mertens, Kautz and Van Reeth 2007), one bracket in memory at a time.

The same maths as OpenCV's `MergeMertens`, which holds every bracket, its weight map and its
pyramids at once (16 float32 images for three brackets); here each bracket is made, weighed
and blended into the result pyramid in turn, so memory beyond the brackets themselves is one
bracket, its pyramids and the result's (about 5 images).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from studio.core.image import FloatArray

Bracket = Callable[[], FloatArray]
"""Makes one bracket's (H, W, 3) RGB pixels in [0, 1] (called twice per bracket; the pixels
are only read)."""


def fuse(
    brackets: Sequence[Bracket], contrast: float, saturation: float, exposure: float
) -> FloatArray:
    """The fused (H, W, 3) image in about [0, 1]; the weights' exponents are those of OpenCV."""
    exponents = (contrast, saturation, exposure)
    weight_sum: FloatArray | None = None
    for make in brackets:
        weight = _weight(make(), *exponents)
        weight_sum = weight if weight_sum is None else weight_sum + weight
    assert weight_sum is not None, "no brackets"
    height, width = weight_sum.shape
    levels = int(math.log(min(height, width)) / math.log(2.0))
    result: list[FloatArray] = []
    for make in brackets:
        pixels = make()
        weight = _weight(pixels, *exponents) / weight_sum
        image_pyramid = _laplacian_pyramid(pixels, levels)
        del pixels
        weight_pyramid = _gaussian_pyramid(weight, levels)
        del weight
        for level, (band, weights) in enumerate(zip(image_pyramid, weight_pyramid, strict=True)):
            band *= weights[..., None]
            if len(result) <= level:
                result.append(band)
            else:
                result[level] += band
        del image_pyramid, weight_pyramid
    for level in range(levels, 0, -1):
        below = result[level - 1]
        below += cv2.pyrUp(result[level], dstsize=(below.shape[1], below.shape[0]))
        del result[level]
    return result[0]


def _weight(pixels: FloatArray, contrast: float, saturation: float, exposure: float) -> FloatArray:
    """Mertens' weight: local contrast x colour saturation x well-exposedness, each powered.

    Worked channel by channel, in place: no temporary is larger than one channel.
    """
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    weight = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    del grey
    np.power(weight, np.float32(contrast), out=weight)
    channels = [pixels[..., c] for c in range(pixels.shape[2])]
    mean = sum(channels[1:], channels[0].copy()) / np.float32(len(channels))
    spread = np.zeros_like(mean)
    exposed = np.ones_like(mean)
    term = np.empty_like(mean)
    for channel in channels:
        np.subtract(channel, mean, out=term)
        term *= term
        spread += term
        np.subtract(channel, np.float32(0.5), out=term)
        term *= term
        term *= np.float32(-1 / 0.08)
        np.exp(term, out=term)
        exposed *= term
    del mean, term
    np.sqrt(spread, out=spread)
    weight *= np.power(spread, np.float32(saturation), out=spread)
    weight *= np.power(exposed, np.float32(exposure), out=exposed)
    weight += np.float32(1e-12)
    return np.asarray(weight, dtype=np.float32)


def _gaussian_pyramid(pixels: FloatArray, levels: int) -> list[FloatArray]:
    pyramid = [pixels]
    for _ in range(levels):
        pyramid.append(np.asarray(cv2.pyrDown(pyramid[-1]), dtype=np.float32))
    return pyramid


def _laplacian_pyramid(pixels: FloatArray, levels: int) -> list[FloatArray]:
    pyramid = _gaussian_pyramid(pixels, levels)
    for level in range(levels):
        finer = pyramid[level]  # a new array each: level 0 is the caller's pixels
        pyramid[level] = finer - cv2.pyrUp(pyramid[level + 1], dstsize=finer.shape[1::-1])
    return pyramid
