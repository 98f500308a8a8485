"""Camera RAW in the window: a DNG opens looking as developed, RAW brackets list their exposure
times from EXIF and merge in linear light. The DNGs are synthetic Bayer mosaics (tests/rawdata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.core.imageio.colour import srgb_encode
from tests.rawdata import write_bayer_dng
from tests.ui.conftest import choose_engine, open_image

TIMES = ((1, 64), (1, 16), (1, 4))  # two stops apart


def _scene(height: int = 48, width: int = 64) -> np.ndarray:
    """Linear radiance over 8 stops from left to right, warm."""
    ramp = np.exp2(np.linspace(-6.0, 2.0, width, dtype=np.float32))[None, :, None]
    return np.repeat(ramp, height, axis=0) * np.array([1.0, 0.8, 0.6], dtype=np.float32)


def test_raw_brackets_show_their_exposure_times_and_merge(qtbot, window, tmp_path: Path) -> None:
    scene = _scene()
    paths = [
        write_bayer_dng(tmp_path / f"DSC_{k}.dng", scene * (n / d) / 2, exposure_time=(n, d))
        for k, (n, d) in enumerate(TIMES)
    ]
    document = open_image(qtbot, window, paths[1])
    # Shown as developed: the linear pixels through the sRGB curve, not two stops dark.
    shown = document.current.display[4:-4, 4:-4, 2].astype(np.float32) / 255  # BGRA: red
    expected = np.asarray(srgb_encode(scene[4:-4, 4:-4, 0] / 32))
    assert np.median(np.abs(shown - expected)) < 2 / 255
    assert window.status_image.text() == "64 × 48 · 16-bit linear · RGB"
    choose_engine(window, "hdr", "merge")
    window.task_inputs.load_brackets(document, [paths[0], paths[2]])
    qtbot.waitUntil(lambda: len(document.brackets) == 3, timeout=10_000)
    table = window.brackets.table
    rows = {table.item(row, 0).text(): table.item(row, 1).text() for row in range(3)}
    assert rows == {"DSC_1.dng": "1/16 s", "DSC_0.dng": "1/64 s", "DSC_2.dng": "1/4 s"}
    assert window.brackets.note.text() == "3 exposures; they are aligned before merging."
    ended: dict[int, str] = {}
    window.sig_job_ended.connect(lambda job_id, how: ended.__setitem__(job_id, how))
    with qtbot.waitSignal(window.sig_document_opened, timeout=30_000) as opened:
        job_id = window.run_current()
        assert job_id is not None, window.last_message
    qtbot.waitUntil(lambda: job_id in ended, timeout=30_000)
    assert ended[job_id] == "done", window.last_message
    radiance = opened.args[0].current.image
    assert radiance.meta.is_float
    stops = np.log2(np.maximum(radiance.pixels, 1e-12) / scene)[4:-4, 4:-4]
    assert float(np.median(np.abs(stops - np.median(stops)))) < 0.05
