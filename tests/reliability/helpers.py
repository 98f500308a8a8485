"""Helpers shared by the reliability suite: running the real `studio` process, reading outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
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
