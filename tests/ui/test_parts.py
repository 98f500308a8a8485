"""The window's parts on their own: worker, inspector, field editors, display, layers."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import Field
from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox

from studio.core.errors import BadInputError
from studio.core.image import Image, ImageMeta
from studio.core.protocol import EngineSpec, Params, Progress
from studio.ui.display import pixels_to_bgra, to_bgra, tone_map
from studio.ui.fields import (
    BoolEditor,
    ChoiceEditor,
    OptionalEditor,
    PathEditor,
    SliderEditor,
    SpinEditor,
    TextEditor,
    editor_for,
)
from studio.ui.inputs import format_exposure, parse_seconds
from studio.ui.jobs import JobRecord, JobState
from studio.ui.worker import JobWorker, WorkerJob, describe_error
from tests.ui.conftest import BROKEN, SLOW


@pytest.fixture
def worker(qtbot):  # type: ignore[no-untyped-def]
    from studio.ui.app import create_application

    create_application()
    thread = JobWorker()
    thread.start()
    yield thread
    thread.shutdown()


def counting_job(steps: int, delay: float = 0.0, fail: BaseException | None = None) -> WorkerJob:
    def start(ctx):  # type: ignore[no-untyped-def]
        for step in range(steps):
            time.sleep(delay)
            yield Progress(step + 1, steps, f"step {step + 1}")
        if fail is not None:
            raise fail
        return steps

    return WorkerJob(start=start, finish=lambda value: value * 10)


def test_worker_runs_jobs_in_order_and_finishes_them(qtbot, worker) -> None:
    results = []
    worker.sig_job_finished.connect(lambda job_id, value: results.append((job_id, value)))
    first, second = counting_job(3), counting_job(5)
    worker.submit(first)
    worker.submit(second)
    qtbot.waitUntil(lambda: len(results) == 2, timeout=5000)
    assert results == [(first.id, 30), (second.id, 50)]


def test_worker_survives_errors_including_gpu_out_of_memory(qtbot, worker) -> None:
    class OutOfMemoryError(RuntimeError):
        """Named like torch.cuda.OutOfMemoryError."""

    failures, finished = [], []
    worker.sig_job_failed.connect(
        lambda job_id, message, details: failures.append((message, details))
    )
    worker.sig_job_finished.connect(lambda job_id, value: finished.append(value))
    worker.submit(counting_job(2, fail=OutOfMemoryError("CUDA out of memory. Tried to allocate")))
    worker.submit(counting_job(1, fail=BadInputError("The mask is empty")))
    worker.submit(counting_job(1, fail=MemoryError()))
    worker.submit(counting_job(4))
    qtbot.waitUntil(lambda: len(finished) == 1, timeout=5000)
    messages = [message for message, _ in failures]
    assert "GPU ran out of memory" in messages[0]
    assert messages[1] == "The mask is empty"
    assert "Not enough memory" in messages[2]
    assert all("Traceback" in details for _, details in failures)
    assert finished == [40]
    assert worker.isRunning()


def test_worker_cancel_closes_the_generator_at_the_next_progress(qtbot, worker) -> None:
    closed = []

    def start(ctx):  # type: ignore[no-untyped-def]
        try:
            for step in range(10_000):
                time.sleep(0.005)
                yield Progress(step, 10_000)
        finally:
            closed.append(True)
        return None

    job = WorkerJob(start=start)
    progressed = []
    worker.sig_job_progressed.connect(lambda job_id, p: progressed.append(p.done))
    with qtbot.waitSignal(worker.sig_job_started, timeout=5000):
        worker.submit(job)
    qtbot.waitUntil(lambda: bool(progressed), timeout=5000)
    with qtbot.waitSignal(worker.sig_job_cancelled, timeout=5000) as cancelled:
        worker.cancel(job.id)
    assert cancelled.args == [job.id]
    assert closed == [True]
    assert progressed[-1] < 10_000


def test_a_stage_begun_at_once_after_another_is_shown_while_it_runs(qtbot, worker) -> None:
    """Progress is thinned to one step every few hundredths of a second, but never the first
    step of a stage: the row would name the stage before for as long as this one runs."""

    def start(ctx):  # type: ignore[no-untyped-def]
        for step in range(5):
            yield Progress(step, 5, "Estimating")
        yield Progress(0, 3, "Deconvolving")
        time.sleep(0.3)
        yield Progress(1, 3, "Deconvolving")
        return 0

    shown = []
    worker.sig_job_progressed.connect(lambda job_id, p: shown.append((p.done, p.message)))
    with qtbot.waitSignal(worker.sig_job_finished, timeout=5000):
        worker.submit(WorkerJob(start=start))
    assert (0, "Deconvolving") in shown
    assert len([m for _, m in shown if m == "Estimating"]) < 5  # the rest is still thinned


def test_the_time_left_counts_from_the_stage_the_bar_started_over_for() -> None:
    """A job that spent 50 s estimating, then deconvolved half the photo in 10 s, has about
    10 s left, not another minute."""
    record = JobRecord(1, "deblur", "", "", "", JobState.RUNNING, started=time.monotonic() - 60)
    record.set_fraction(0.95)
    record.set_fraction(0.0)
    record.stage_started -= 10  # type: ignore[operator]
    record.set_fraction(0.5)
    assert record.eta() == pytest.approx(10, abs=1)
    record.set_fraction(0.75)  # the bar moving on begins no stage
    assert record.eta() == pytest.approx(10 / 3, abs=1)
    record.stage_started = None  # a job of one stage: its whole time counts
    assert record.eta() == pytest.approx(20, abs=1)


def test_the_time_left_counts_down_while_the_bar_waits_for_a_long_step() -> None:
    """Half done in 60 s: about 60 s left; 10 s later with the bar where it was (one tile of
    two still running), 50 s, not 70; past the estimate, no figure rather than a wrong one."""
    record = JobRecord(1, "deblur", "", "", "", JobState.RUNNING, started=time.monotonic() - 60)
    record.set_fraction(0.5)
    assert record.eta() == pytest.approx(60, abs=1)
    record.started, record.moved = record.started - 10, record.moved - 10  # type: ignore[operator]
    assert record.eta() == pytest.approx(50, abs=1)
    record.started, record.moved = record.started - 60, record.moved - 60
    assert record.eta() is None


def test_an_icon_on_a_selected_row_keeps_its_colour_not_the_accent(qtbot) -> None:
    """A selected row is blue: the accent-blue icon on it (the History's current entry) was
    hard to see."""
    from PySide6.QtGui import QIcon

    from studio.ui.icons import icon
    from studio.ui.theme import TEXT

    picture = icon("brush").pixmap(QSize(32, 32), QIcon.Mode.Selected).toImage()
    inked = [
        picture.pixelColor(x, y)
        for x in range(picture.width())
        for y in range(picture.height())
        if picture.pixelColor(x, y).alpha() == 255
    ]
    assert inked and all(colour.name() == TEXT for colour in inked)


def test_a_running_job_with_nothing_measured_yet_shows_a_busy_bar(qtbot) -> None:
    """An empty bar that stays empty (the one tile of a small photo being deconvolved, for
    seconds) looks stuck; Qt's busy bar says the job works."""
    from studio.ui.progress_panel import JobRow

    record = JobRecord(1, "deblur", "", "", "")
    row = JobRow(record, lambda: None)
    qtbot.addWidget(row)
    assert row.bar.maximum() > 0  # waiting: an empty bar
    record.state = JobState.RUNNING
    row.refresh()
    assert row.bar.maximum() == row.bar.minimum() == 0
    record.set_fraction(0.25)
    row.refresh()
    assert row.bar.maximum() == 1000 and row.bar.value() == 250
    record.state, record.fraction = JobState.DONE, 1.0
    row.refresh()
    assert row.bar.value() == row.bar.maximum() == 1000


def _opened_log(qtbot, panel_height: int) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """Details opened on a job in a Progress panel this high: where the log's top lands in
    the panel's view, the log's height and the view's."""
    from studio.ui.progress_panel import ProgressPanel

    panel = ProgressPanel()
    qtbot.addWidget(panel)
    panel.resize(700, panel_height)
    panel.add(JobRecord(1, "deblur", "", "", "", JobState.DONE, log=["a step"] * 30))
    panel.show()
    qtbot.waitExposed(panel)
    bar = panel._scroll.verticalScrollBar()
    assert bar.value() == 0
    panel.row(1).details_button.click()
    qtbot.waitUntil(lambda: bar.value() > 0, timeout=2000)
    details, view = panel.row(1).details, panel._scroll.viewport()
    return details.mapTo(view, details.rect().topLeft()).y(), details.height(), view.height()


@pytest.mark.parametrize("panel_height", [100, 130])
def test_a_job_s_log_opens_in_sight_in_a_short_progress_panel(qtbot, panel_height: int) -> None:
    """One row high, as the window lays the panel out, the log opened below the fold."""
    top, log, view = _opened_log(qtbot, panel_height)
    if log <= view:  # it fits: all of it, the row's foot above it
        assert top > 0 and top + log == view
    else:  # its first lines
        assert top == 0


def test_a_newer_preview_replaces_a_queued_one(qtbot, worker) -> None:
    blocker = counting_job(50, delay=0.01)
    finished, cancelled = [], []
    worker.sig_job_finished.connect(lambda job_id, value: finished.append(job_id))
    worker.sig_job_cancelled.connect(cancelled.append)
    with qtbot.waitSignal(worker.sig_job_started, timeout=5000):
        worker.submit(blocker)
    old = counting_job(1)
    old.is_preview = True
    new = counting_job(1)
    new.is_preview = True
    worker.submit(old)
    worker.submit(new)
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=5000)
    assert cancelled == [old.id]
    assert finished == [blocker.id, new.id]


def test_describe_error_keeps_studio_messages_and_explains_the_rest() -> None:
    assert describe_error(BadInputError("Too small"))[0] == "Too small"
    message, details = describe_error(ValueError("bad shape"))
    assert message == "Unexpected error: ValueError: bad shape"
    assert "ValueError" in details


class Colour(Enum):
    WARM = "warm"
    COOL = "cool"


class EveryKind(Params):
    amount: float = Field(0.5, ge=0.0, le=1.0, description="How much")
    count: int = Field(3, ge=1, le=9)
    scale: float = Field(2.0, gt=0.0)
    mode: Literal["fast", "best"] = "best"
    colour: Colour = Colour.COOL
    sharpen: bool = True
    kernel: Path | None = None
    label: str = "x"
    tile: int | None = None
    sizes: tuple[int, ...] = (1, 2)


def test_editors_follow_the_field_types_and_defaults(qtbot) -> None:
    fields = EveryKind.model_fields
    kinds = {name: type(editor_for(field)) for name, field in fields.items()}
    assert kinds == {
        "amount": SliderEditor,
        "count": SliderEditor,
        "scale": SpinEditor,
        "mode": ChoiceEditor,
        "colour": ChoiceEditor,
        "sharpen": BoolEditor,
        "kernel": PathEditor,
        "label": TextEditor,
        "tile": OptionalEditor,
        "sizes": TextEditor,
    }
    values = {name: editor_for(field).value() for name, field in fields.items()}
    assert EveryKind.model_validate(values) == EveryKind()
    assert editor_for(fields["amount"]).toolTip() == "How much"


def test_an_optional_file_is_a_picker_with_a_no_file_state(qtbot, tmp_path: Path) -> None:
    editor = editor_for(EveryKind.model_fields["kernel"])
    assert isinstance(editor, PathEditor)
    qtbot.addWidget(editor)
    assert editor.value() is None and not editor.clear_button.isEnabled()
    assert not editor.findChildren(QCheckBox)  # no "Auto" box beside "No file"
    editor.set_value(tmp_path / "kernel.png")
    assert editor.value() == tmp_path / "kernel.png" and editor.clear_button.isEnabled()
    with qtbot.waitSignal(editor.sig_value_changed):
        editor.clear_button.click()
    assert editor.value() is None and not editor.clear_button.isEnabled()


def test_an_auto_value_hides_the_editor_whose_value_it_replaces(qtbot) -> None:
    editor = editor_for(EveryKind.model_fields["tile"])
    qtbot.addWidget(editor)
    inner = editor._inner  # type: ignore[attr-defined]
    assert editor.value() is None and not inner.isVisibleTo(editor)
    editor.set_value(256)
    assert editor.value() == 256 and inner.isVisibleTo(editor)


def _wheel(widget) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    centre = QPointF(widget.rect().center())
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(centre.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_the_wheel_changes_a_slider_only_once_it_is_clicked(qtbot) -> None:
    from PySide6.QtWidgets import QSlider

    from studio.ui.inspector import Inspector

    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_engine(_spec(EveryKind))
    inspector.show()
    qtbot.waitExposed(inspector)
    slider = inspector.editors["amount"].findChild(QSlider)
    _wheel(slider)  # (a real wheel event then goes on to scroll the form: seen under Xvfb)
    assert inspector.editors["amount"].value() == EveryKind().amount
    inspector.activateWindow()
    slider.setFocus()
    qtbot.waitUntil(slider.hasFocus)
    _wheel(slider)
    assert inspector.editors["amount"].value() != EveryKind().amount


def _spec(params: type[Params]) -> EngineSpec:
    def run(inputs, p, ctx):  # type: ignore[no-untyped-def]
        yield Progress(0, 1)
        return inputs.image

    return EngineSpec("denoise", "every-kind", "Every kind", params, run)


def test_inspector_validates_inline_and_saves_presets(qtbot) -> None:
    from studio.ui.inspector import Inspector

    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_engine(_spec(EveryKind))
    assert set(inspector.editors) == set(EveryKind.model_fields)
    assert inspector.is_valid() and inspector.run_button.isEnabled()
    # A value the model refuses, typed in a spin box: shown under the field, Run disabled.
    inspector.editors["scale"].set_value(0.0)
    assert "greater than 0" in inspector.field_error("scale")
    assert not inspector.is_valid() and not inspector.run_button.isEnabled()
    inspector.editors["scale"].set_value(1.5)
    assert inspector.field_error("scale") == "" and inspector.is_valid()
    # Values from outside (a preset, a recipe) are checked before they are applied.
    assert not inspector.set_values({"count": 99})
    assert "count" in inspector.banner_text()
    assert inspector.values()["count"] == 3
    assert inspector.set_values({"count": 7, "mode": "fast"})
    inspector.save_preset("my look")
    inspector.reset()
    assert inspector.values()["count"] == 3 and inspector.values()["scale"] == 2.0
    assert inspector.preset_names() == ["my look"]
    assert inspector.load_preset("my look")
    assert inspector.values()["count"] == 7 and inspector.values()["mode"] == "fast"


def test_inspector_builds_a_form_for_every_registered_engine(qtbot, registry) -> None:
    from studio.ui.fields import bounds
    from studio.ui.inspector import Inspector, defaults

    inspector = Inspector()
    qtbot.addWidget(inspector)
    specs = [spec for task in registry.tasks() for spec in registry.engines(task)]
    assert SLOW in specs and BROKEN in specs
    for spec in specs:
        inspector.set_engine(spec)
        fields = spec.params.model_fields
        assert set(inspector.editors) == set(fields), spec.id
        assert inspector.is_valid(), f"{spec.task}/{spec.id}: {inspector.banner_text()}"
        assert spec.params.model_validate(inspector.values()) == spec.params.model_validate(
            defaults(spec)
        )
        for name, field in fields.items():
            assert inspector.editors[name].toolTip() == (field.description or ""), name
            annotation = field.annotation
            if annotation in (int, float):
                low, high = bounds(field, annotation is int)
                if np.isfinite(high):
                    bad = high + 1000
                    assert not inspector.set_values({name: bad}), f"{spec.id}.{name}={bad}"
                    assert name in inspector.banner_text()
                elif np.isfinite(low):
                    bad = low - 1000
                    assert not inspector.set_values({name: bad}), f"{spec.id}.{name}={bad}"
        assert inspector.is_valid()


def test_display_keeps_8_and_16_bit_values_and_tone_maps_radiance() -> None:
    ramp = np.linspace(0, 1, 256, dtype=np.float32).reshape(1, 256, 1)
    bgra = pixels_to_bgra(np.repeat(ramp, 3, axis=2))
    np.testing.assert_array_equal(bgra[0, :, 2], np.arange(256))
    assert (bgra[..., 3] == 255).all()
    grey = pixels_to_bgra(ramp)
    np.testing.assert_array_equal(grey[0, :, 0], grey[0, :, 2])
    radiance = np.geomspace(0.01, 500, 512, dtype=np.float32).reshape(1, 512, 1)
    mapped = tone_map(np.repeat(radiance, 3, axis=2))
    values = mapped[0, :, 1].astype(int)
    assert values.min() < 40 and values.max() > 240  # the whole range is used
    assert (np.diff(values) >= 0).all()  # brighter stays brighter
    hdr = pixels_to_bgra(np.repeat(radiance, 3, axis=2), hdr=True)
    np.testing.assert_array_equal(hdr[0, :, 2], values)
    nan = pixels_to_bgra(np.full((2, 2, 3), np.nan, dtype=np.float32))
    assert (nan[..., :3] == 0).all()


def test_display_shows_a_linear_raw_and_dim_radiance_through_the_srgb_curve() -> None:
    linear = np.array([0.0, 0.0031308, 0.0540, 0.2140, 1.0], dtype=np.float32)
    raw = Image(np.repeat(linear.reshape(1, 5, 1), 3, axis=2), ImageMeta(16, linear=True))
    shown = to_bgra(raw)[0, :, 2].astype(int)
    # sRGB: 0, 0.0404, 0.2577, 0.5, 1 (Studio's own curve not used to compute these).
    assert np.abs(shown - np.array([0, 10, 66, 128, 255])).max() <= 1
    grey = to_bgra(Image(linear.reshape(1, 5, 1), ImageMeta(16, linear=True)))
    np.testing.assert_array_equal(grey[0, :, 0], shown)
    # A radiance map within [0, 1] (a RAW merge whose reference bracket clipped nothing) too.
    radiance = Image(np.repeat(linear.reshape(1, 5, 1), 3, axis=2), ImageMeta(32))
    np.testing.assert_array_equal(to_bgra(radiance)[0, :, 2], shown)


def test_exposure_times_read_and_write_as_photographers_write_them() -> None:
    assert parse_seconds("1/250") == pytest.approx(0.004)
    assert parse_seconds("0.5 s") == 0.5 and parse_seconds("2") == 2.0
    assert parse_seconds("") is None and parse_seconds("fast") is None
    assert format_exposure(1 / 250) == "1/250 s" and format_exposure(2.0) == "2 s"


def test_paint_layer_strokes_undo_and_hints(qtbot) -> None:
    from studio.ui.layers import PaintLayer

    layer = PaintLayer(80, 60, QColor(255, 0, 0))
    layer.begin_stroke(QPointF(10, 10), 10, hardness=1.0)
    layer.stroke_to(QPointF(60, 40))
    layer.end_stroke()
    painted = layer.alpha()
    assert painted[10, 10] == 1.0 and painted[40, 60] == 1.0 and painted[55, 5] == 0.0
    layer.begin_stroke(QPointF(35, 25), 8, erase=True)
    layer.end_stroke()
    assert layer.alpha()[25, 35] == 0.0
    layer.undo_stack.undo()
    np.testing.assert_array_equal(layer.alpha(), painted)
    hints = PaintLayer(40, 40, QColor(255, 255, 255))
    hints.begin_stroke(QPointF(20, 20), 6, colour=QColor(200, 100, 50))
    hints.end_stroke()
    rgba = hints.rgba()
    np.testing.assert_allclose(rgba[20, 20], [200 / 255, 100 / 255, 50 / 255, 1.0], atol=1 / 255)
    assert rgba[2, 2, 3] == 0.0


def test_one_undo_timeline_holds_jobs_strokes_and_hints_in_order(qtbot) -> None:
    from studio.ui.document import Document, make_step

    image = Image(np.zeros((8, 8, 3), np.float32), ImageMeta())
    document = Document(None, make_step("Open", image))
    stack = document.undo_stack

    def paint(layer) -> None:  # type: ignore[no-untyped-def]
        layer.begin_stroke(QPointF(4, 4), 4)
        layer.end_stroke()

    document.apply(make_step("step 1", image.with_pixels(image.pixels + 0.1)))
    paint(document.mask)
    document.apply(make_step("step 2", image.with_pixels(image.pixels + 0.2)))
    paint(document.hints)
    assert [stack.text(i) for i in range(stack.count())] == [
        "step 1",
        "Mask: Paint",
        "step 2",
        "Hints: Paint",
    ]
    stack.undo()
    assert document.hints.is_empty() and document.current.label == "step 2"
    stack.undo()
    assert document.current.label == "step 1" and not document.mask.is_empty()
    stack.undo()
    assert document.mask.is_empty() and document.current.label == "step 1"
    document.apply(make_step("branch", image))
    assert [s.label for s in document.steps] == ["Open", "step 1", "branch"]
    assert not stack.canRedo()
    # A result of another size gets fresh layers; undoing it brings the painted ones back.
    paint(document.mask)
    painted = document.mask
    document.apply(make_step("smaller", Image(np.zeros((4, 6, 3), np.float32), ImageMeta())))
    assert document.mask is not painted and document.mask.is_empty()
    assert (document.mask.width, document.mask.height) == (6, 4)
    stack.undo()
    assert document.mask is painted and not painted.is_empty()


def test_samples_cover_every_job_and_carry_exposure_times(tmp_path: Path) -> None:
    from studio.core.imageio import read_image
    from studio.core.protocol import TASKS
    from studio.ui.samples import ensure_samples

    samples = ensure_samples(tmp_path)
    assert {sample.task for sample in samples} == set(TASKS) - {"degrade"}
    for sample in samples:
        assert all(path.is_file() for path in sample.images)
    hdr = next(sample for sample in samples if sample.task == "hdr")
    times = [read_image(path).meta.exposure_time for path in hdr.images]
    assert times == pytest.approx([1 / 250, 1 / 60, 1 / 15])
    inpaint = next(sample for sample in samples if sample.task == "inpaint")
    assert inpaint.mask is not None and read_image(inpaint.mask).pixels.max() == 1.0


def test_canvas_is_pixel_exact_from_100_percent_and_zooms_around_the_cursor(qtbot) -> None:
    from PySide6.QtCore import QPoint

    from studio.ui.canvas import CanvasView
    from studio.ui.display import to_qimage

    checker = (np.indices((96, 128)).sum(axis=0) % 2).astype(np.float32)[..., None]
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    image = to_qimage(pixels_to_bgra(checker))
    view.set_images(image, image)
    view.set_zoom(4.0)
    view.centerOn(64, 48)
    shown = view.viewport().grab().toImage()
    origin = view.mapFromScene(QPointF(60, 44))
    for dy in range(8):
        for dx in range(8):
            pixel = shown.pixelColor(origin + QPoint(dx, dy))
            expected = 255 * ((60 + dx // 4 + 44 + dy // 4) % 2)
            assert pixel.red() == expected, (dx, dy)  # sharp 4x4 blocks, no smoothing
    anchor = QPointF(100, 80)
    under = view.mapToScene(anchor.toPoint())
    view.set_zoom(8.0, anchor)
    after = view.mapToScene(anchor.toPoint())
    assert abs(after.x() - under.x()) < 0.5 and abs(after.y() - under.y()) < 0.5


def test_compare_shows_steps_of_different_sizes_at_one_size(qtbot) -> None:
    from studio.ui.compare import ComparePane
    from studio.ui.document import make_step

    pane = ComparePane()
    qtbot.addWidget(pane)
    small = make_step("Open", Image(np.full((20, 30, 3), 0.5, np.float32)))
    big = make_step("Upscale", Image(np.full((40, 60, 3), 0.5, np.float32)))
    pane.set_steps([small, big], 0, 1)
    sizes = [view.image_item.boundingRect().size().toSize() for view in pane.views]
    assert [(s.width(), s.height()) for s in sizes] == [(60, 40), (60, 40)]


def test_inspector_offers_no_blend_for_engines_that_change_the_size(qtbot) -> None:
    from studio.engine.ops.upscale import ENGINES as UPSCALE
    from studio.ui.inspector import Inspector

    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.set_engine(_spec(EveryKind))
    inspector.opacity_slider.setValue(40)
    inspector.limit_to_mask.setChecked(True)
    assert inspector.opacity() == 0.4 and inspector.only_in_mask()
    inspector.set_engine(UPSCALE[0])
    assert not inspector.opacity_slider.isVisible()
    assert inspector.opacity() == 1.0 and not inspector.only_in_mask()


def test_the_mask_is_shown_in_a_colour_that_stands_out_on_the_photo(qtbot) -> None:
    from studio.ui.display import MASK_COLOURS, contrasting_colour

    red, green = MASK_COLOURS[0], MASK_COLOURS[1]
    flower = np.zeros((20, 20, 4), np.uint8)
    flower[...] = (40, 30, 230, 255)  # BGRA: a red subject
    flower[:5] = (60, 160, 50, 255)  # with some green leaves
    assert contrasting_colour(flower) not in (red, green)
    grass = np.zeros((20, 20, 4), np.uint8)
    grass[...] = (60, 200, 40, 255)
    assert contrasting_colour(grass) != green


def test_inspector_shows_only_the_parameters_the_chosen_blur_shape_uses(qtbot) -> None:
    from studio.engine.ops.deblur import ENGINES as DEBLUR
    from studio.ui.inspector import Inspector

    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.set_engine(next(spec for spec in DEBLUR if spec.id == "blind"))
    shape_fields = ("length", "angle", "radius", "sigma")
    assert inspector.field_shown("max_size") and inspector.field_shown("noise")
    assert not any(inspector.field_shown(name) for name in shape_fields)
    for shape, shown in (("motion", {"length", "angle"}), ("defocus", {"radius"})):
        assert inspector.set_values({"psf": shape})
        assert {name for name in shape_fields if inspector.field_shown(name)} == shown
        assert not inspector.field_shown("max_size")
