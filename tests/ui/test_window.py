"""The studio window, driven as a user would: docks, opening, jobs, cancel, errors, batch."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from studio.core.image import Image, ImageMeta
from studio.core.imageio import read_image, write_image
from studio.core.protocol import JobInputs, RunContext
from studio.core.stored import as_image
from studio.engine.batch import ItemStatus
from studio.engine.jobs import JobRequest, run_job
from studio.ui.canvas import Compare, Tool
from studio.ui.display import to_bgra
from studio.ui.jobs import JobRecord, JobState
from tests.ui.conftest import choose_engine, discard_when_asked, gradient, open_image

DOCKS = ("canvas", "models", "inspector", "progress", "batch", "history")


def run_to_end(qtbot, window, timeout: int = 20_000) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Press Run and wait for the job to end; returns (job id, how it ended)."""
    ended: dict[int, str] = {}
    window.sig_job_ended.connect(lambda job_id, how: ended.__setitem__(job_id, how))
    job_id = window.run_current()
    assert job_id is not None, window.last_message
    qtbot.waitUntil(lambda: job_id in ended, timeout=timeout)
    return job_id, ended[job_id]


def result_of(image: Image, registry, task: str, engine: str, params: dict) -> Image:  # type: ignore[no-untyped-def]
    """The reference: the same job through run_job directly, outside the window."""
    job = run_job(registry, JobRequest(task, JobInputs((image,)), engine, params), RunContext())
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return stop.value


def test_every_dock_exists_and_toggles_from_the_view_menu(window) -> None:
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    view_actions = view_menu.actions()
    assert set(window.docks) == set(DOCKS)
    for name in DOCKS:
        dock = window.docks[name]
        toggle = dock.toggleViewAction()
        assert toggle in view_actions, f"{name} is not in the View menu"
        assert dock.isVisibleTo(window) or dock.isHidden() is False
        toggle.trigger()
        assert dock.isHidden(), f"{name} did not close"
        toggle.trigger()
        assert not dock.isHidden(), f"{name} did not reopen"
        features = dock.features()
        for feature in ("DockWidgetClosable", "DockWidgetMovable", "DockWidgetFloatable"):
            assert features & getattr(type(features), feature)


def test_layout_is_saved_restored_and_reset(qtbot, registry, tmp_path: Path) -> None:
    from studio.core.paths import config_dir
    from studio.ui.main_window import MainWindow

    first = MainWindow(registry, describe_device=False, samples=False)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    first.docks["batch"].close()
    first.docks["history"].setFloating(True)
    first.close()
    assert (config_dir() / "studio-window.ini").is_file()
    assert str(config_dir()).startswith(str(tmp_path.parent.parent))

    second = MainWindow(registry, describe_device=False, samples=False)
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    assert second.docks["batch"].isHidden()
    assert second.docks["history"].isFloating()
    second.reset_layout()
    assert not second.docks["batch"].isHidden()
    assert not second.docks["history"].isFloating()
    second.shutdown()


def test_open_by_dropping_file_urls_on_the_canvas(qtbot, window, image_file: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_file))])
    target = window.canvas.viewport()
    pos = QPointF(target.rect().center())
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(
        pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(window.sig_document_opened, timeout=10_000) as opened:
        QApplication.sendEvent(target, enter)
        assert enter.isAccepted()
        drop = QDropEvent(
            pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(target, drop)
    document = opened.args[0]
    assert document.path == image_file
    expected = read_image(image_file).pixels
    np.testing.assert_array_equal(document.current.image.pixels, expected)
    assert window.canvas_panel.stack.currentWidget() is window.canvas


def test_open_from_the_command_line(qtbot, image_file: Path, monkeypatch) -> None:
    from studio.ui import app as app_module

    seen = {}

    def close_when_open() -> None:
        for widget in QApplication.topLevelWidgets():
            documents = getattr(widget, "documents", None)
            if documents:
                seen["names"] = [d.name for d in documents]
                widget.close()

    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(close_when_open)
    timer.start(50)
    monkeypatch.setattr("studio.ui.window_photos.ensure_samples", lambda folder: [])
    assert app_module.run([str(image_file)]) == 0
    timer.stop()
    assert seen["names"] == [image_file.name]


def test_run_a_job_and_see_the_result_on_the_canvas(
    qtbot, window, registry, image_file: Path
) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "denoise", "gaussian")
    assert window.inspector.set_values({"sigma": 2.0})
    job_id, how = run_to_end(qtbot, window)
    assert how == "done"
    assert window.progress_panel.records[job_id].state is JobState.DONE
    assert len(document.steps) == 2 and document.index == 1
    expected = result_of(read_image(image_file), registry, "denoise", "gaussian", {"sigma": 2.0})
    np.testing.assert_allclose(document.current.image.pixels, expected.pixels, atol=1e-6)
    # What the canvas draws is the result, not the original.
    shown = window.canvas.grab().toImage()
    centre = window.canvas.mapFromScene(QPointF(64.5, 48.5))
    pixel = shown.pixelColor(centre)
    wanted = to_bgra(expected)[48, 64]
    assert (pixel.blue(), pixel.green(), pixel.red()) == pytest.approx(tuple(wanted[:3]), abs=2)
    assert "Gaussian" in window.history_panel.list.item(1).text()
    row = window.progress_panel.row(job_id)
    row.details_button.click()
    details = row.details.toPlainText().splitlines()
    assert details[0].endswith("Noise level 2 (given)")  # the radius was not given
    assert details[-1].startswith("Done in")


def test_the_status_bar_gives_a_job_s_time_as_its_row_does(window) -> None:
    record = JobRecord(7, "deblur", "Automatic shake removal", "photo.png", "CPU")
    window.progress_panel.add(record)
    window.progress_panel.started(7)
    window.runs.on_done(7, "Deblur · Automatic shake removal", 87.2)
    assert record.message == "Done in 1:27"
    assert window.last_message == "Deblur · Automatic shake removal: done in 1:27"


def test_cancel_a_running_job(qtbot, window, image_file: Path) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "denoise", "test-slow")
    window.inspector.set_values({"steps": 5000, "delay": 0.01})
    job_id = window.run_current()
    qtbot.waitUntil(lambda: window.progress_panel.records[job_id].fraction > 0, timeout=10_000)
    with qtbot.waitSignal(window.sig_job_ended, timeout=5_000) as ended:
        window.progress_panel.row(job_id).cancel_button.click()
    assert ended.args == [job_id, "cancelled"]
    record = window.progress_panel.records[job_id]
    assert record.state is JobState.CANCELLED and record.fraction < 1.0
    assert len(document.steps) == 1
    # The worker is still there for the next job.
    window.inspector.set_values({"steps": 3, "delay": 0.0})
    _, how = run_to_end(qtbot, window)
    assert how == "done" and len(document.steps) == 2


@pytest.mark.parametrize("fail_with", ["runtime", "studio"])
def test_an_engine_error_reaches_the_progress_log_and_the_worker_survives(
    qtbot, window, image_file: Path, fail_with: str
) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "denoise", "test-broken")
    window.inspector.set_values({"fail_with": fail_with})
    job_id, how = run_to_end(qtbot, window)
    assert how == "failed"
    record = window.progress_panel.records[job_id]
    assert record.state is JobState.FAILED
    wanted = "kaput" if fail_with == "runtime" else "too dark"
    assert wanted in record.error
    assert any(wanted in line for line in record.log)
    row = window.progress_panel.row(job_id)
    assert wanted in row.message.text()
    row.details_button.click()
    assert "Traceback" in row.details.toPlainText()
    assert window.worker.isRunning()
    choose_engine(window, "denoise", "gaussian")
    _, how = run_to_end(qtbot, window)
    assert how == "done" and len(document.steps) == 2


def test_batch_over_a_folder_with_one_corrupt_file(qtbot, window, tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    for index in range(3):
        pixels = np.clip(gradient(64, 80) + 0.1 * index, 0, 1).astype(np.float32)
        write_image(Image(pixels, ImageMeta(bit_depth=8)), folder / f"good{index}.png")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a picture")
    choose_engine(window, "denoise", "gaussian")
    window.open_paths([folder])
    panel = window.batch_panel
    panel.out_dir.setText(str(tmp_path / "out"))
    panel.replan()
    assert len(panel.plan.items) == 4
    with qtbot.waitSignal(window.sig_job_ended, timeout=30_000) as ended:
        panel.start_button.click()
    assert ended.args[1] == "done"
    by_name = {item.inputs[0].name: panel.statuses[i] for i, item in enumerate(panel.plan.items)}
    assert by_name == {
        "bad.png": ItemStatus.FAILED,
        "good0.png": ItemStatus.DONE,
        "good1.png": ItemStatus.DONE,
        "good2.png": ItemStatus.DONE,
    }
    bad_index = next(
        i for i, item in enumerate(panel.plan.items) if item.inputs[0].name == "bad.png"
    )
    assert "bad.png" in panel.reasons[bad_index]
    assert panel.items.topLevelItem(bad_index).text(1) == "Failed"
    outputs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert outputs == ["good0_denoise.png", "good1_denoise.png", "good2_denoise.png"]
    assert "1 failed" in panel.status.text()
    assert panel.retry_button.isEnabled()
    # Fix the bad file and retry: only it runs again.
    write_image(Image(gradient(64, 80), ImageMeta(bit_depth=8)), folder / "bad.png")
    with qtbot.waitSignal(window.sig_job_ended, timeout=30_000):
        panel.retry_button.click()
    assert set(panel.statuses.values()) == {ItemStatus.DONE}
    assert (tmp_path / "out" / "bad_denoise.png").is_file()
    # Resume after a restart: everything is already done, nothing is redone.
    with qtbot.waitSignal(window.sig_job_ended, timeout=30_000):
        panel.resume_button.click()
    assert set(panel.statuses.values()) == {ItemStatus.SKIPPED}


def test_hdr_brackets_with_exposure_times_merge_from_the_window(
    qtbot, window, tmp_path: Path
) -> None:
    scene = gradient(48, 64) * 4.0
    paths = []
    for index, seconds in enumerate((1 / 200, 1 / 50, 1 / 12.5)):
        exposed = np.clip(scene * seconds * 12.5, 0, 1).astype(np.float32)
        path = tmp_path / f"bracket{index}.png"
        write_image(Image(exposed, ImageMeta(bit_depth=8)), path)
        paths.append(path)
    document = open_image(qtbot, window, paths[0])
    choose_engine(window, "hdr", "merge")
    assert window.brackets.isVisibleTo(window.inspector)
    window.task_inputs.load_brackets(document, paths[1:])
    qtbot.waitUntil(lambda: len(document.brackets) == 3, timeout=10_000)
    assert window.brackets.table.rowCount() == 3
    for row, typed in enumerate(("1/200", "1/50", "0.08")):
        window.brackets.table.item(row, 1).setText(typed)
    times = [bracket.meta.exposure_time for bracket in document.brackets]
    assert times == pytest.approx([1 / 200, 1 / 50, 0.08])
    document.mask.set_alpha(np.ones((48, 64), np.float32), "Paint")  # must not follow
    with qtbot.waitSignal(window.sig_document_opened, timeout=20_000) as opened:
        _, how = run_to_end(qtbot, window)
    assert how == "done", window.last_message
    # The merge opens as its own document named after the set; the bracket's tab is untouched.
    merged = opened.args[0]
    assert merged is not document and window.document is merged
    assert merged.name == "bracket0–bracket2"
    assert [d.name for d in window.documents] == ["bracket0.png", "bracket0–bracket2"]
    assert len(document.steps) == 1
    np.testing.assert_array_equal(document.current.image.pixels, read_image(paths[0]).pixels)
    radiance = merged.current.image
    assert radiance.pixels.shape[:2] == (48, 64) and radiance.meta.is_float
    # radiance follows the scene: the brightest scene pixels are the brightest merged ones
    order = np.corrcoef(radiance.pixels.mean(axis=2).ravel(), scene.mean(axis=2).ravel())[0, 1]
    assert order > 0.95
    assert "HDR" in merged.current.label
    assert merged.mask.is_empty() and not document.mask.is_empty()
    assert set(merged.source_paths()) == set(paths)


def test_the_event_loop_keeps_running_while_a_job_runs(qtbot, window, image_file: Path) -> None:
    """A 5 ms timer keeps firing on the GUI thread through a 1.2 s job: work done on the GUI
    thread would leave it at a tick or two. How long the stalls are depends on the machine's
    load; that figure is `python -m benchmarks.ui`'s, not a test's."""
    from studio.ui.stall import StallMonitor

    open_image(qtbot, window, image_file)
    choose_engine(window, "denoise", "test-slow")
    window.inspector.set_values({"steps": 60, "delay": 0.02})
    monitor = StallMonitor(parent=window)
    monitor.start()
    _, how = run_to_end(qtbot, window)
    monitor.stop()
    assert how == "done"
    assert monitor.ticks > 10


def test_mask_brush_paints_and_undoes_per_stroke(qtbot, window, image_file: Path) -> None:
    from pytestqt.qtbot import QtBot

    document = open_image(qtbot, window, image_file)
    window.tools.set_tool(Tool.BRUSH)
    window.canvas_panel.set_brush_size(12)
    viewport = window.canvas.viewport()
    start = window.canvas.mapFromScene(QPointF(20, 20))
    end = window.canvas.mapFromScene(QPointF(100, 70))
    QtBot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    for t in np.linspace(0, 1, 12):
        point = QPoint(
            int(start.x() + (end.x() - start.x()) * t), int(start.y() + (end.y() - start.y()) * t)
        )
        QtBot.mouseMove(viewport, point)
    QtBot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    mask = document.mask.alpha()
    assert mask[20, 20] > 0.5 and mask[70, 100] > 0.5 and mask[90, 5] == 0
    assert document.undo_stack.count() == 1 and document.undo_stack.undoText() == "Mask: Paint"
    window.tools.undo()
    assert document.mask.is_empty()
    window.tools.redo()
    np.testing.assert_array_equal(document.mask.alpha(), mask)
    window.act["mask_invert"].trigger()
    np.testing.assert_allclose(document.mask.alpha(), 1.0 - mask, atol=1 / 255)


def test_live_preview_matches_the_full_run(qtbot, window, registry, image_file: Path) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "denoise", "gaussian")
    window.inspector.set_values({"sigma": 1.0})
    window.canvas.set_zoom(3.0)
    window.canvas.centerOn(64, 48)
    with qtbot.waitSignal(window.sig_job_ended, timeout=10_000) as ended:
        window.act["preview"].setChecked(True)
    assert ended.args[1] == "done"
    item = window.canvas.image_item
    rect = item.preview_rect
    assert not rect.isEmpty() and rect.width() < 128
    full = result_of(document.current.image, registry, "denoise", "gaussian", {"sigma": 1.0})
    expected = to_bgra(full)[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]
    patch = item.preview
    got = np.array(
        [
            [patch.pixelColor(x, y).getRgb()[:3][::-1] for x in range(patch.width())]
            for y in range(patch.height())
        ]
    )
    inner = np.s_[4:-4, 4:-4]  # away from the crop's own border
    np.testing.assert_allclose(got[inner], expected[..., :3][inner], atol=1)
    assert len(document.steps) == 1  # a preview is not a step


def test_history_undo_redo_and_click_to_view(qtbot, window, image_file: Path) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "denoise", "gaussian")
    run_to_end(qtbot, window)
    window.inspector.set_values({"sigma": 4.0})
    run_to_end(qtbot, window)
    assert len(document.steps) == 3
    window.tools.undo()
    assert document.index == 1
    window.history_panel.list.setCurrentRow(0)
    assert document.index == 0
    assert window.canvas.image_item.after.constBits() is not None
    window.tools.redo()
    assert document.index == 1
    run_to_end(qtbot, window)  # applying after an undo drops the undone step
    assert len(document.steps) == 3 and document.index == 2


def test_before_after_split_and_ab_compare(qtbot, window, image_file: Path) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "denoise", "test-slow")
    window.inspector.set_values({"steps": 1, "delay": 0.0})
    run_to_end(qtbot, window)  # the result is the negative: easy to tell apart
    window.act["split"].setChecked(True)
    assert window.canvas.compare is Compare.SPLIT
    window.canvas.set_split(0.5)
    shown = window.canvas.grab().toImage()
    left = shown.pixelColor(window.canvas.mapFromScene(QPointF(30, 48)))
    right = shown.pixelColor(window.canvas.mapFromScene(QPointF(98, 48)))
    before, after = to_bgra(document.before.image), to_bgra(document.current.image)
    assert left.red() == pytest.approx(before[48, 30, 2], abs=2)
    assert right.red() == pytest.approx(after[48, 98, 2], abs=2)
    window.act["before"].setChecked(True)
    assert window.canvas.compare is Compare.BEFORE
    window.act["compare"].setChecked(True)
    pane = window.canvas_panel.compare
    assert window.canvas_panel.stack.currentWidget() is pane
    assert pane.chosen() == (0, 1)
    pane.views[0].set_zoom(2.5)
    pane.views[0].centerOn(40, 30)
    assert pane.views[1].zoom() == pytest.approx(2.5)
    centre_a = pane.views[0].mapToScene(pane.views[0].viewport().rect().center())
    centre_b = pane.views[1].mapToScene(pane.views[1].viewport().rect().center())
    assert abs(centre_a.x() - centre_b.x()) < 2 and abs(centre_a.y() - centre_b.y()) < 2


def test_export_writes_the_viewed_step_and_never_the_original(
    qtbot, window, tmp_path: Path
) -> None:
    source = tmp_path / "deep.tif"
    pixels = gradient(40, 50)
    write_image(Image(pixels, ImageMeta(bit_depth=16)), source)
    document = open_image(qtbot, window, source)
    target = tmp_path / "export.tif"
    window.photos.export_step(document.current, target, 16)
    qtbot.waitUntil(lambda: "Exported" in window.last_message, timeout=10_000)
    back = read_image(target)
    assert back.meta.bit_depth == 16
    np.testing.assert_allclose(back.pixels, read_image(source).pixels, atol=1 / 65535)
    window.photos.export_step(document.current, source, 16)
    qtbot.waitUntil(lambda: "Export failed" in window.last_message, timeout=10_000)
    assert "never" in window.last_message or "overwrite" in window.last_message
    assert read_image(source).meta.bit_depth == 16


def test_no_top_level_widgets_leak(qtbot, registry, image_file: Path, monkeypatch) -> None:
    from studio.ui.main_window import MainWindow

    discard_when_asked(monkeypatch)

    before = set(map(id, QApplication.topLevelWidgets()))
    win = MainWindow(registry, describe_device=False, samples=False)
    win.show()
    qtbot.waitExposed(win)
    open_image(qtbot, win, image_file)
    choose_engine(win, "denoise", "gaussian")
    run_to_end(qtbot, win)
    win.docks["history"].setFloating(True)
    win.engines.manage_models()
    win.close()
    win.deleteLater()
    del win
    qtbot.wait(50)
    QApplication.processEvents()
    gc.collect()
    QApplication.sendPostedEvents(None, 0)
    leaked = [w for w in QApplication.topLevelWidgets() if id(w) not in before]
    assert leaked == [], [type(w).__name__ for w in leaked]


def _pixel_shown(window, x: int, y: int) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    shown = window.canvas.grab().toImage()
    colour = shown.pixelColor(window.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
    return colour.blue(), colour.green(), colour.red()


def test_ctrl_z_undoes_strokes_and_jobs_in_order_and_restores_the_picture(
    qtbot, window, image_file: Path
) -> None:
    document = open_image(qtbot, window, image_file)
    original = to_bgra(document.current.image)[48, 64, :3]
    assert _pixel_shown(window, 64, 48) == pytest.approx(tuple(original), abs=2)
    choose_engine(window, "denoise", "test-slow")
    window.inspector.set_values({"steps": 1, "delay": 0.0})
    _, how = run_to_end(qtbot, window)  # the negative: easy to tell apart
    assert how == "done"
    negative = to_bgra(document.current.image)[48, 64, :3]
    assert _pixel_shown(window, 64, 48) == pytest.approx(tuple(negative), abs=2)
    document.mask.begin_stroke(QPointF(10, 10), 6)
    document.mask.end_stroke()
    assert window.act["undo"].text() == "&Undo Mask: Paint"
    window.activateWindow()
    qtbot.waitActive(window)

    def ctrl_z() -> None:
        qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)

    ctrl_z()  # the stroke first: it came last
    assert document.mask.is_empty() and document.index == 1
    assert window.last_message == "Undid Mask: Paint"
    ctrl_z()  # then the job
    assert document.index == 0 and len(document.steps) == 2
    assert "Undid Slow test engine" in window.last_message or "Undid Denoise" in window.last_message
    assert _pixel_shown(window, 64, 48) == pytest.approx(tuple(original), abs=2)
    assert window.history_panel.list.currentRow() == 0
    assert not window.act["undo"].isEnabled() and window.act["redo"].isEnabled()


def test_quitting_or_closing_with_unexported_results_asks_first(
    qtbot, window, image_file: Path, tmp_path: Path, monkeypatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    answers = [QMessageBox.StandardButton.Cancel]
    asked: list[str] = []

    def question(parent, title, text, *args):  # type: ignore[no-untyped-def]
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr("studio.ui.main_window.QMessageBox.question", question)
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "denoise", "gaussian")
    run_to_end(qtbot, window)
    assert not window.close()  # Ctrl+Q, answered Cancel
    assert len(asked) == 1 and "photo.png" in asked[0] and window.isVisible()
    answers.append(QMessageBox.StandardButton.Cancel)
    window.photos.close_document()
    assert len(asked) == 2 and window.documents == [document]
    window.photos.export_step(document.current, tmp_path / "out.png", 8)
    qtbot.waitUntil(lambda: "Exported" in window.last_message, timeout=10_000)
    window.photos.close_document()  # exported: closes without asking
    assert len(asked) == 2 and window.documents == []
    open_image(qtbot, window, image_file)
    assert window.close()  # nothing done to it: no question
    assert len(asked) == 2 and not window.isVisible()


def test_every_failed_open_is_listed_in_the_progress_log(
    qtbot, window, image_file: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.png"
    with qtbot.waitSignal(window.sig_document_opened, timeout=10_000):
        window.open_paths([image_file, empty, missing])
    qtbot.waitUntil(lambda: window.loading == 0, timeout=10_000)
    assert [d.name for d in window.documents] == ["photo.png"]
    failed = [r for r in window.progress_panel.records.values() if r.state is JobState.FAILED]
    assert sorted(r.engine for r in failed) == ["empty.jpg", "missing.png"]
    for record in failed:
        assert record.engine in record.error
        assert window.progress_panel.row(record.id).message.text() == record.error
    assert window.docks["progress"].isVisible()


def test_a_new_tab_opens_fitted_and_each_tab_keeps_its_own_zoom(
    qtbot, window, image_file: Path
) -> None:
    first = open_image(qtbot, window, image_file)
    window.canvas.set_zoom(2.0)
    second = open_image(qtbot, window, image_file)
    assert window.document is second and window.canvas.fitted
    assert window.canvas.zoom() == pytest.approx(window.canvas.fit_zoom()) != 2.0
    window.canvas_panel.tabs.setCurrentIndex(0)
    assert window.document is first and window.canvas.zoom() == pytest.approx(2.0)


def test_batch_panel_targets_a_remembered_cluster_and_shows_each_items_node(
    qtbot, window, tmp_path: Path
) -> None:
    from studio.engine.batch import BatchItem, ItemFinished
    from studio.ui.batch_panel import BatchPanel

    panel = window.batch_panel
    assert panel.settings(resume=False).cluster is None
    panel.use_cluster.setChecked(True)
    panel.cluster_address.setText("10.0.0.5:6379")
    panel.cluster_address.editingFinished.emit()
    panel.ship.setChecked(True)
    settings = panel.settings(resume=False)
    assert (settings.cluster, settings.ship) == ("10.0.0.5:6379", True)
    again = BatchPanel(panel._recipe_provider, panel._registry_provider)
    qtbot.addWidget(again)
    assert again.cluster() == "10.0.0.5:6379" and again.ship.isChecked()
    again.use_cluster.setChecked(False)
    assert again.cluster() is None and not again.cluster_address.isEnabled()
    photo = tmp_path / "a.png"
    write_image(Image(gradient(16, 16), ImageMeta(bit_depth=8)), photo)
    panel.add_sources([photo])
    panel.out_dir.setText(str(tmp_path / "out"))
    panel.replan()
    item: BatchItem = panel.plan.items[0]
    panel.on_event(ItemFinished(0, item, 1.0, node="node-b/1a2b3c4d"))
    assert panel.items.topLevelItem(0).text(1) == "Done on node-b/1a2b3c4d"


def test_a_saved_layout_with_a_tall_progress_panel_leaves_the_photo_room(qtbot, registry) -> None:
    from studio.ui.main_window import MainWindow

    first = MainWindow(registry, describe_device=False, samples=False)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    qtbot.wait(50)
    first.resizeDocks(
        [first.docks["canvas"], first.docks["progress"]], [150, 650], Qt.Orientation.Vertical
    )
    qtbot.waitUntil(lambda: first.docks["canvas"].height() < first.height() / 3, timeout=5_000)
    first.close()

    second = MainWindow(registry, describe_device=False, samples=False)
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    qtbot.waitUntil(lambda: second.docks["canvas"].height() >= second.height() / 2, timeout=5_000)
    # ... and the Progress panel can be made small again.
    canvas, progress = second.docks["canvas"], second.docks["progress"]
    total = canvas.height() + progress.height()
    second.resizeDocks([canvas, progress], [total - 60, 60], Qt.Orientation.Vertical)
    qtbot.waitUntil(
        lambda: progress.height() <= progress.minimumSizeHint().height() + 10, timeout=5_000
    )
    second.shutdown()


def test_an_engine_taking_hints_hands_the_brush_over_to_the_hint_tool(window) -> None:
    window.tools.set_tool(Tool.BRUSH)
    choose_engine(window, "colorize", "levin")
    assert window.canvas.tool is Tool.HINT
    assert "hint tool" in window.task_inputs.note.text()
    choose_engine(window, "inpaint", "telea")
    assert window.canvas.tool is Tool.BRUSH and "mask brush" in window.task_inputs.note.text()


def test_an_upscale_is_shown_and_one_too_big_for_the_window_is_refused_before_running(
    qtbot, window, registry, image_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "upscale", "lanczos")
    assert window.inspector.set_values({"scale": 2.0})
    _, how = run_to_end(qtbot, window)
    assert how == "done"
    expected = as_image(
        result_of(read_image(image_file), registry, "upscale", "lanczos", {"scale": 2.0})
    )
    assert document.current.image.pixels.shape == (192, 256, 3)
    np.testing.assert_array_equal(document.current.image.pixels, expected.pixels)
    monkeypatch.setenv("STUDIO_MAX_PIXELS", "500000")  # the 256x192 result at 4x: 786,432
    assert window.inspector.set_values({"scale": 4.0})
    assert window.run_current() is None
    assert "more than the window holds" in window.last_message
    assert len(document.steps) == 2
