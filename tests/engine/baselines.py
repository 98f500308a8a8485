"""Trivial implementations every engine must beat, and the photographs they are compared on.

The best of each baseline is searched over its one parameter against the ground truth, so an
engine that beats it beats every setting a user could have tried by hand.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image as PILImage
from skimage import data as skdata

from studio.core.image import luminance
from studio.engine.ops.colorize import compose, to_chroma
from tests.helpers import psnr
from tests.shared import SHARED

SKIMAGE_CROPS = {
    "astronaut": (slice(40, 136), slice(160, 256)),
    "chelsea": (slice(60, 156), slice(120, 216)),
}
SHARED_PHOTOS = ("denoising/CBSD68/101085.png", "denoising/CBSD68/102061.png")


def photo(name: str, size: int = 96) -> np.ndarray:
    """A (size, size, 3) crop in [0, 1] of a skimage photograph or of a ../shared test photo."""
    if name in SKIMAGE_CROPS:
        rows, cols = SKIMAGE_CROPS[name]
        pixels = np.asarray(getattr(skdata, name)(), np.float32)[rows, cols]
    else:
        pixels = np.asarray(PILImage.open(SHARED / "testdata" / name).convert("RGB"), np.float32)
        top, left = (pixels.shape[0] - size) // 2, (pixels.shape[1] - size) // 2
        pixels = pixels[top : top + size, left : left + size]
    return np.ascontiguousarray(pixels[:size, :size]) / 255


def best_over(make: Callable[[float], np.ndarray], values: np.ndarray, truth: np.ndarray) -> float:
    """The highest PSNR against `truth` of `make(value)` over `values`."""
    return max(psnr(make(float(value)), truth) for value in values)


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(pixels, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return np.asarray(blurred, np.float32).reshape(pixels.shape)


def best_gaussian_denoise(noisy: np.ndarray, truth: np.ndarray) -> float:
    return best_over(
        lambda s: np.clip(gaussian_blur(noisy, s), 0, 1), np.arange(0.3, 4.0, 0.05), truth
    )


def best_unsharp_mask(blurred: np.ndarray, truth: np.ndarray) -> float:
    """Unsharp masking, searched over radius and amount."""
    return max(
        best_over(
            lambda amount, r=radius: np.clip(
                blurred + amount * (blurred - gaussian_blur(blurred, r)), 0, 1
            ),
            np.arange(0.0, 4.01, 0.1),
            truth,
        )
        for radius in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    )


def gaussian_hint_spread(grey: np.ndarray, hints: np.ndarray, sigma: float) -> np.ndarray:
    """Hint chroma averaged over a Gaussian neighbourhood, ignoring edges, on the grey's luma."""
    weight = gaussian_blur(hints[..., 3], sigma)
    planes = np.moveaxis(to_chroma(hints[..., :3]), -1, 0)
    chroma = np.stack([gaussian_blur(c * hints[..., 3], sigma) for c in planes], axis=-1)
    chroma /= np.maximum(weight, 1e-12)[..., None]
    return compose(grey[..., 0], chroma.astype(np.float32), clip=True)


def best_hint_spread(grey: np.ndarray, hints: np.ndarray, truth: np.ndarray) -> float:
    return best_over(
        lambda s: gaussian_hint_spread(grey, hints, s), np.arange(1.0, 20.0, 0.5), truth
    )


def sparse_hints(truth: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hints = np.zeros((*truth.shape[:2], 4), np.float32)
    chosen = rng.random(truth.shape[:2]) < fraction
    hints[chosen, :3] = truth[chosen]
    hints[chosen, 3] = 1.0
    return hints


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(luminance(rgb), np.float32)[..., None]


def telea(damaged: np.ndarray, hole: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV Telea on the 8-bit damaged photo."""
    eight_bit = np.clip(np.rint(damaged * 255), 0, 255).astype(np.uint8)
    filled = cv2.inpaint(eight_bit, hole.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    return np.asarray(filled, np.float32) / 255
