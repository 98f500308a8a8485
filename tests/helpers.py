"""Small helpers shared by the tests: finishing an operation, measuring quality."""

from __future__ import annotations

import signal

import numpy as np

from studio.core.image import Image
from studio.core.protocol import OpRun


def default_sigint() -> None:
    """For a child process: Ctrl-C interrupts it. A test runner started in the background
    ignores SIGINT, and children inherit that, so a test sending SIGINT would see nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(job: OpRun) -> Image:
    """Run an operation generator to its end and return its result image."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            result: Image = stop.value
            return result


def psnr(result: np.ndarray, truth: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB."""
    return float(10 * np.log10(peak**2 / np.mean((result.astype(np.float64) - truth) ** 2)))
