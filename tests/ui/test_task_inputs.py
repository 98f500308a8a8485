"""Engine inputs in the window come from the declarations: a reference photo for colorize."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.core.image import Image, ImageMeta
from studio.core.imageio import write_image
from studio.core.protocol import REFERENCE
from tests.ui.conftest import choose_engine, open_image


def test_colorize_from_a_reference_photo_chosen_in_the_inspector(
    qtbot, window, tmp_path: Path
) -> None:
    texture = np.random.default_rng(0).random((48, 64)).astype(np.float32)
    grey = tmp_path / "grey.png"
    write_image(Image(np.dstack([texture] * 3), ImageMeta(bit_depth=8)), grey)
    reference = tmp_path / "orange.png"
    orange = np.dstack([texture, texture * 0.5, texture * 0.25])  # the same texture, in orange
    write_image(Image(orange.astype(np.float32), ImageMeta(bit_depth=8)), reference)
    document = open_image(qtbot, window, grey)
    choose_engine(window, "colorize", "levin")
    well = window.task_inputs.picture_wells[REFERENCE.name]
    assert well.isVisibleTo(window.inspector)
    assert window.run_current() is None  # no hints, no reference: the three ways, in words
    message = window.last_message
    assert "hint tool" in message and "reference" in message and "--" not in message
    window.task_inputs.load_picture(REFERENCE, reference)
    qtbot.waitUntil(lambda: REFERENCE.name in document.pictures, timeout=10_000)
    assert well.current.text() == "orange.png"
    assert window.batch_panel.input_files[REFERENCE.name] == reference  # batches use it too
    ended: dict[int, str] = {}
    window.sig_job_ended.connect(lambda job_id, how: ended.__setitem__(job_id, how))
    job_id = window.run_current()
    assert job_id is not None, window.last_message
    qtbot.waitUntil(lambda: job_id in ended, timeout=30_000)
    assert ended[job_id] == "done", window.last_message
    red, green, blue = document.current.image.pixels.reshape(-1, 3).mean(axis=0)
    assert red > green + 0.08 and green > blue + 0.04
