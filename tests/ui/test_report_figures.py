"""Pictures an engine declares in `EngineSpec.figures` (the blind deblur's estimated kernel)
reach the job's row in the Progress panel, and the Inspector while that engine is chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QToolButton
from skimage import data as skdata

from studio.core.image import Image, ImageMeta
from studio.core.imageio import write_image
from studio.engine.psf import load_kernel
from studio.ui.progress_panel import FIGURE_SIDE, figure_image, figure_size
from tests.ui.conftest import choose_engine, open_image
from tests.ui.test_window import run_to_end


def _grey_values(image: QImage) -> np.ndarray:
    rows = [
        [image.pixelColor(x, y).value() for x in range(image.width())]
        for y in range(image.height())
    ]
    return np.array(rows, np.float64)


def test_figure_image_crops_to_the_kernel_and_enlarges_by_whole_pixels() -> None:
    kernel = np.zeros((9, 9), np.float32)
    kernel[4, 3:6] = [0.2, 0.4, 0.2]
    kernel[5, 5] = 0.2
    image = figure_image(kernel, side=20)
    # 3x2 non-zero box plus a 1-px margin is 5x4, enlarged 4 times (20 // 5).
    assert (image.width(), image.height()) == (20, 16)
    values = _grey_values(image)
    assert values[4 + 2, 4 + 5] == 255  # the peak (row 4, column 4 of the kernel) is white
    assert values[4 + 1, 4 + 1] == 128  # 0.2 of a 0.4 peak is mid grey
    assert values[0, 0] == 0 and values[-1, -1] == 0
    assert figure_size(kernel) == "3 × 2 px"  # as the row's tooltip and the Inspector say
    assert figure_size(np.zeros((3, 3))) == "empty"


def test_the_estimated_kernel_is_shown_beside_the_blind_deblur_job(
    qtbot, window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = np.zeros((11, 11))
    kernel[3, 2:6] = kernel[3:8, 5] = kernel[7, 5:9] = 1.0  # a Z-shaped shake
    kernel /= kernel.sum()
    sharp = np.asarray(skdata.astronaut()[:200, 140:340], np.float64) / 255
    blurred = np.stack(
        [scipy.signal.fftconvolve(sharp[..., c], kernel, mode="valid") for c in range(3)], -1
    )
    blurred += np.random.default_rng(5).normal(0, 0.01, blurred.shape)
    path = tmp_path / "shaken.png"
    write_image(Image(np.clip(blurred, 0, 1).astype(np.float32), ImageMeta(bit_depth=8)), path)
    open_image(qtbot, window, path)
    choose_engine(window, "deblur", "blind")
    assert window.inspector.set_values({"max_size": 15})
    job_id, how = run_to_end(qtbot, window, timeout=300_000)
    assert how == "done"
    row = window.progress_panel.row(job_id)
    assert [title for title, _ in row.figures] == ["Estimated blur kernel"]
    shown = _grey_values(row.figures[0][1].pixmap().toImage())
    # Back to one value per kernel pixel: the largest whole factor whose blocks the picture
    # is made of (the size arithmetic alone is ambiguous: a 56-px picture of a 14-px box
    # enlarged 4 times also reads as 11 boxes of 5), then compared with the true Z at the
    # best shift.
    factor = next(
        f
        for f in range(FIGURE_SIDE, 0, -1)
        if shown.shape[0] % f == shown.shape[1] % f == 0
        and np.array_equal(np.kron(shown[::f, ::f], np.ones((f, f))), shown)
    )
    small = shown[::factor, ::factor]
    peak = scipy.signal.correlate(np.pad(small, 11), kernel, mode="valid").max()
    assert peak / np.linalg.norm(small) / np.linalg.norm(kernel) >= 0.8

    strip = window.task_inputs.figures
    assert strip.isVisibleTo(window.inspector)
    assert [title for title, _ in strip.shown] == ["Estimated blur kernel"]
    np.testing.assert_array_equal(_grey_values(strip.shown[0][1].pixmap().toImage()), shown)
    choose_engine(window, "deblur", "hyper_laplacian")  # it reports no kernel
    assert not strip.isVisibleTo(window.inspector)
    choose_engine(window, "deblur", "blind")
    assert [title for title, _ in strip.shown] == ["Estimated blur kernel"]

    # Saved from the Inspector, it reads back as a kernel file (16-bit PNG).
    saved = tmp_path / "kernel.png"
    monkeypatch.setattr("studio.ui.task_inputs.ask_save_file", lambda *args: saved)
    strip.findChild(QToolButton).click()
    qtbot.waitUntil(saved.exists, timeout=10_000)
    estimated = window.document.figures[("blind", "Estimated blur kernel")]
    np.testing.assert_allclose(load_kernel(saved), estimated / estimated.sum(), atol=1e-4)
