"""Quality benchmark: one module per task, each exposing `rows(quick: bool) -> list[dict]`.

A row has `task`, `engine`, `dataset` and any of `psnr`, `ssim`, `target`, `note`, `sec_per_mp`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from studio.core.image import Image
from studio.core.protocol import JobInputs, RunContext
from studio.core.registry import Registry
from studio.engine.jobs import JobRequest, run_job
from studio.engine.registry import build_registry


@dataclass(frozen=True)
class Timed:
    """A job's result with its wall-clock and process CPU seconds (CPU time is the steadier
    figure on a shared machine)."""

    image: Image
    wall: float
    cpu: float

    def note(self, megapixels: float) -> str:
        return f"; CPU {self.cpu / megapixels:.2f} s/MP"


@cache
def registry() -> Registry:
    return build_registry()


def run_timed(task: str, inputs: JobInputs, engine: str | None, **params: Any) -> Timed:
    """Run one job through `run_job`, the CLI's code path, and time it."""
    request = JobRequest(task, inputs, engine, params)
    start, cpu_start = time.perf_counter(), time.process_time()
    job = run_job(registry(), request, RunContext(device="auto"))
    while True:
        try:
            next(job)
        except StopIteration as stop:
            result: Image = stop.value
            return Timed(result, time.perf_counter() - start, time.process_time() - cpu_start)


def psnr(result: np.ndarray, truth: np.ndarray) -> float:
    mse = float(np.mean((result.astype(np.float64) - truth) ** 2))
    return float(10.0 * np.log10(1.0 / max(mse, 1e-12)))


def ssim(result: np.ndarray, truth: np.ndarray) -> float:
    return float(structural_similarity(result, truth, data_range=1.0, channel_axis=2))
