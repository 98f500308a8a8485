"""Built-in degrade engines: make ground-truth pairs by adding noise, blurring with a PSF,
JPEG-compressing or punching a hole. The same seed always gives the same result."""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from studio.core.image import FloatArray, Image
from studio.core.protocol import EngineSpec, JobInputs, OpRun, Params, Progress, RunContext
from studio.engine.psf import PsfShape, kernel_from


class NoiseParams(Params):
    kind: Literal["gaussian", "poisson"] = Field(
        "gaussian", description="Gaussian (sensor read noise) or Poisson (photon shot noise)"
    )
    level: float = Field(
        25.0,
        gt=0.0,
        le=10000.0,
        description="Gaussian: standard deviation on a 0-255 scale; Poisson: photons at white "
        "(fewer is noisier)",
    )
    seed: int = Field(0, ge=0, description="Random seed: the same seed gives the same noise")


class BlurParams(PsfShape):
    """The blur to add: the same shapes the deblur engines remove."""


class JpegParams(Params):
    quality: int = Field(30, ge=1, le=100, description="JPEG quality: lower is blockier")


class MaskParams(Params):
    pattern: Literal["box", "pixels"] = Field(
        "box", description="One box-shaped hole, or scattered single pixels"
    )
    fraction: float = Field(0.05, gt=0.0, le=0.9, description="Share of the image to remove")
    fill: float = Field(1.0, ge=0.0, le=1.0, description="Grey level the hole is filled with")
    seed: int = Field(0, ge=0, description="Random seed: the same seed punches the same hole")


def _finish(image: Image, pixels: FloatArray) -> Image:
    if not image.meta.is_float:
        pixels = np.clip(pixels, 0.0, 1.0)
    return image.with_pixels(np.asarray(pixels, dtype=np.float32))


def run_noise(inputs: JobInputs, params: NoiseParams, ctx: RunContext) -> OpRun:
    image = inputs.image
    rng = np.random.default_rng(params.seed)
    yield Progress(0, 1, "Adding noise")
    if params.kind == "gaussian":
        noise = rng.standard_normal(image.pixels.shape, dtype=np.float32)
        noisy = image.pixels + noise * np.float32(params.level / 255.0)
    else:
        photons = np.clip(image.pixels, 0.0, None).astype(np.float64) * params.level
        noisy = (rng.poisson(photons) / params.level).astype(np.float32)
    yield Progress(1, 1, "Adding noise")
    return _finish(image, noisy)


def blur(pixels: FloatArray, kernel: FloatArray) -> FloatArray:
    """Convolve each channel with `kernel` (borders mirrored, as scipy's 'reflect')."""
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    channels = [
        cv2.filter2D(pixels[..., c], cv2.CV_32F, flipped, borderType=cv2.BORDER_REFLECT)
        for c in range(pixels.shape[2])
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def run_blur(inputs: JobInputs, params: BlurParams, ctx: RunContext) -> OpRun:
    kernel = kernel_from(params)
    yield Progress(0, 1, "Blurring")
    blurred = blur(inputs.image.pixels, kernel)
    yield Progress(1, 1, "Blurring")
    return _finish(inputs.image, blurred)


def jpeg(pixels: FloatArray, quality: int) -> FloatArray:
    """Encode as 8-bit JPEG at `quality` and decode again."""
    eight = np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    colour = eight.shape[2] == 3
    source = cv2.cvtColor(eight, cv2.COLOR_RGB2BGR) if colour else eight
    ok, encoded = cv2.imencode(".jpg", source, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    if colour:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return np.asarray(decoded, np.float32).reshape(pixels.shape) / 255.0


def run_jpeg(inputs: JobInputs, params: JpegParams, ctx: RunContext) -> OpRun:
    yield Progress(0, 1, "Compressing")
    out = jpeg(inputs.image.pixels, params.quality)
    yield Progress(1, 1, "Compressing")
    return inputs.image.with_pixels(out)


def make_box_mask(shape: tuple[int, int], fraction: float, seed: int) -> FloatArray:
    """(H, W) float32 mask, 1 inside one box covering about `fraction` of the image, with
    the image's aspect ratio, at a seeded position."""
    height, width = shape
    box_h = min(height, max(1, round(height * math.sqrt(fraction))))
    box_w = min(width, max(1, round(height * width * fraction / box_h)))
    rng = np.random.default_rng(seed)
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    mask = np.zeros(shape, np.float32)
    mask[top : top + box_h, left : left + box_w] = 1.0
    return mask


def make_pixel_mask(shape: tuple[int, int], fraction: float, seed: int) -> FloatArray:
    """(H, W) float32 mask with `fraction` of the pixels, chosen at random, set to 1."""
    rng = np.random.default_rng(seed)
    return (rng.random(shape) < fraction).astype(np.float32)


def run_mask(inputs: JobInputs, params: MaskParams, ctx: RunContext) -> OpRun:
    image = inputs.image
    make = make_box_mask if params.pattern == "box" else make_pixel_mask
    yield Progress(0, 1, "Punching a hole")
    mask = make((image.height, image.width), params.fraction, params.seed)
    out = np.where(mask[..., None] > 0, np.float32(params.fill), image.pixels)
    yield Progress(1, 1, "Punching a hole")
    return image.with_pixels(out.astype(np.float32))


ENGINES: list[EngineSpec] = [
    EngineSpec(
        task="degrade",
        id="noise",
        name="Add noise",
        params=NoiseParams,
        run=run_noise,
        description="Adds Gaussian or Poisson noise of a chosen level, reproducibly.",
        default=True,
    ),
    EngineSpec(
        task="degrade",
        id="blur",
        name="Blur",
        params=BlurParams,
        run=run_blur,
        description="Blurs with a motion, defocus or Gaussian PSF, or a kernel file.",
    ),
    EngineSpec(
        task="degrade",
        id="jpeg",
        name="JPEG compression",
        params=JpegParams,
        run=run_jpeg,
        description="Compresses to JPEG at a chosen quality and decodes again.",
    ),
    EngineSpec(
        task="degrade",
        id="mask",
        name="Punch a hole",
        params=MaskParams,
        run=run_mask,
        description="Removes a box or scattered pixels, filled with a flat grey.",
    ),
]
