"""Fixtures for the window tests: test engines, small images, and a window wired to them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import Field

from studio.core.errors import BadInputError
from studio.core.image import Image, ImageMeta
from studio.core.imageio import write_image
from studio.core.protocol import EngineSpec, JobInputs, OpRun, Params, Progress, RunContext
from studio.core.registry import Registry
from studio.engine.registry import build_registry

pytest.importorskip("pytestqt")


class SlowParams(Params):
    steps: int = Field(200, ge=1, le=10_000, description="Iterations")
    delay: float = Field(0.01, ge=0.0, le=1.0, description="Seconds of work per iteration")


def run_slow(inputs: JobInputs, params: SlowParams, ctx: RunContext) -> OpRun:
    """Real work per iteration (OpenCV filtering, as built-in engines do), then Progress.

    Returns the negative of the image.
    """
    image = inputs.image
    scratch = np.random.default_rng(0).random((384, 384, 3)).astype(np.float32)
    for step in range(params.steps):
        deadline = time.perf_counter() + params.delay
        while time.perf_counter() < deadline:
            scratch = cv2.GaussianBlur(scratch, (0, 0), 2.0)
        ctx.log(f"iteration {step}")
        yield Progress(step, params.steps, f"Iteration {step + 1}/{params.steps}")
    return image.with_pixels(1.0 - image.pixels)


class BrokenParams(Params):
    fail_with: str = Field("runtime", description="runtime or studio")
    threshold: float = Field(0.5, gt=0.0, description="Exclusive lower bound, for the inspector")


def run_broken(inputs: JobInputs, params: BrokenParams, ctx: RunContext) -> OpRun:
    yield Progress(0, 2, "About to fail")
    if params.fail_with == "studio":
        raise BadInputError("This photo is too dark for the broken engine")
    raise RuntimeError("kaput: the engine blew up")


SLOW = EngineSpec(
    task="denoise",
    id="test-slow",
    name="Slow test engine",
    params=SlowParams,
    run=run_slow,
    description="Inverts the image, slowly.",
)
BROKEN = EngineSpec(
    task="denoise",
    id="test-broken",
    name="Broken test engine",
    params=BrokenParams,
    run=run_broken,
    description="Always fails.",
)


@pytest.fixture
def registry() -> Registry:
    """The real engines plus a slow and a failing test engine."""
    reg = build_registry()
    reg.register(SLOW)
    reg.register(BROKEN)
    return reg


def gradient(height: int = 96, width: int = 128, channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [x / width, y / height, (x + y) / (width + height)][:channels]
    return np.stack(planes, axis=2).astype(np.float32)


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    """A 128x96 8-bit RGB PNG."""
    path = tmp_path / "photo.png"
    write_image(Image(gradient(), ImageMeta(bit_depth=8)), path)
    return path


def discard_when_asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Answer 'Discard' to the window's questions (closing with unexported results);
    returns the list the questions' texts are recorded in."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def question(parent, title, text, *args):  # type: ignore[no-untyped-def]
        asked.append(text)
        return QMessageBox.StandardButton.Discard

    monkeypatch.setattr("studio.ui.main_window.QMessageBox.question", question)
    return asked


@pytest.fixture
def window(qtbot, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator:  # type: ignore[no-untyped-def]
    from studio.ui.app import create_application
    from studio.ui.main_window import MainWindow

    discard_when_asked(monkeypatch)
    create_application()
    win = MainWindow(registry, describe_device=False, samples=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.shutdown()


def open_image(qtbot, window, path: Path):  # type: ignore[no-untyped-def]
    """Open `path` in the window and wait until it is shown; returns the Document."""
    with qtbot.waitSignal(window.sig_document_opened, timeout=10_000) as blocker:
        window.open_paths([path])
    return blocker.args[0]


def choose_engine(window, task: str, engine_id: str) -> EngineSpec:  # type: ignore[no-untyped-def]
    window.models_panel.set_task(task)
    assert window.models_panel.select_engine(engine_id), f"{task}/{engine_id} not selectable"
    spec = window.models_panel.current_engine()
    assert spec is not None and spec.id == engine_id
    return spec
