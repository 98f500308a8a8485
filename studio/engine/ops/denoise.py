"""Built-in denoise engines."""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from studio.core.protocol import EngineSpec, JobInputs, OpRun, Params, Progress, RunContext


class GaussianParams(Params):
    sigma: float = Field(1.5, ge=0.1, le=20.0, description="Blur radius (standard deviation) in pixels")


def run_gaussian(inputs: JobInputs, params: GaussianParams, ctx: RunContext) -> OpRun:
    image = inputs.image
    yield Progress(0, 1, "Smoothing")
    smoothed = cv2.GaussianBlur(image.pixels, (0, 0), params.sigma).reshape(image.pixels.shape)
    yield Progress(1, 1, "Done")
    return image.with_pixels(np.asarray(smoothed, dtype=np.float32))


ENGINES: list[EngineSpec] = [
    EngineSpec(
        task="denoise",
        id="gaussian",
        name="Gaussian smoothing",
        params=GaussianParams,
        run=run_gaussian,
        description="Textbook baseline: blurs noise and detail alike.",
        default=True,
    ),
]
