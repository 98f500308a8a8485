"""Helpers shared by the reliability suite: running the real `studio` process, reading outputs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np

REPO = Path(__file__).resolve().parents[2]


def studio_process(
    args: Sequence[str], timeout: float = 120, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Run `python -m studio ARGS` to its end; a hang fails the test (TimeoutExpired)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **popen.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        **popen,
    )


def error_line(stderr: str) -> str:
    """The only line on stderr (a clear error is one line, never a traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("studio: "), lines
    return lines[0]


def leftovers(folder: Path, keep: Callable[[Path], bool] = lambda path: False) -> list[str]:
    """Files in `folder` (recursively) other than those `keep` accepts."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not keep(p))


def read_png(path: Path) -> np.ndarray:
    """An output PNG's samples as (H, W, C), decoded by libpng (not Studio's reader)."""
    samples = np.asarray(imagecodecs.png_decode(path.read_bytes()))
    return samples if samples.ndim == 3 else samples[..., None]


@contextlib.contextmanager
def fifo_watchdog(fifos: Sequence[Path], after_s: float = 20.0) -> Iterator[list[Path]]:
    """Yield the list of `fifos` a reader blocked on; after `after_s` seconds, unblock them.

    A thread opens each FIFO's writing end and closes it again (the reader then sees the end
    of the file), so a job that blocks on one fails its test instead of hanging the suite.
    """
    blocked: list[Path] = []
    stop = threading.Event()

    def unblock() -> None:
        if stop.wait(after_s):
            return
        while not stop.is_set():
            for fifo in fifos:
                with contextlib.suppress(OSError):  # ENXIO: nobody is reading it
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                    blocked.append(fifo)
            stop.wait(0.2)

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    try:
        yield blocked
    finally:
        stop.set()
        watchdog.join()
