"""The estimation region in the window: drawn with the region tool, shown in the Inspector for
engines that declare a region input, handed to the job, and cleared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QImage

from studio.core.image import Image
from studio.core.protocol import (
    EngineInput,
    EngineSpec,
    InputForm,
    InputKind,
    JobInputs,
    Missing,
    OpRun,
    Progress,
    RunContext,
)
from studio.ui.canvas import Tool
from studio.ui.document import make_step
from tests.ui.conftest import SlowParams, choose_engine, open_image

DEPTH_AREA = InputKind(
    "depth_area",
    InputForm.REGION,
    "Depth sample",
    "a part of the photo at the depth to keep",
    Missing(window="Draw the depth sample", cli="give --input depth_area=FILE"),
    when_absent="Automatic: the centre of the photo",
)


def _run_keep(inputs: JobInputs, params: SlowParams, ctx: RunContext) -> OpRun:
    yield Progress(1, 1)
    return inputs.image


SAMPLED = EngineSpec(
    task="denoise",
    id="test-sampled",
    name="Sampled test engine",
    params=SlowParams,
    run=_run_keep,
    inputs=(EngineInput(DEPTH_AREA),),
)


def _drag(window, start: tuple[int, int], end: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    from pytestqt.qtbot import QtBot

    viewport = window.canvas.viewport()
    first = window.canvas.mapFromScene(QPointF(*start))
    last = window.canvas.mapFromScene(QPointF(*end))
    QtBot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=first)
    for t in np.linspace(0, 1, 8):
        step = last - first
        QtBot.mouseMove(viewport, first + QPoint(round(step.x() * t), round(step.y() * t)))
    QtBot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=last)


def _request_region(window, name: str = "estimation_region") -> np.ndarray | None:  # type: ignore[no-untyped-def]
    request = window.jobs.build_request(window.runs.choices())
    return request.inputs.extras.get(name)


def test_a_drawn_region_is_shown_and_reaches_the_blind_deblur_job(
    qtbot, window, image_file: Path
) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "deblur", "blind")
    row = window.task_inputs.region
    assert row.isVisibleTo(window.inspector) and window.act["region"].isEnabled()
    assert row.title.text() == "Estimation region"
    assert row.current.text() == "Automatic: the most detailed part of the photo"
    assert not row.clear_button.isEnabled() and _request_region(window) is None

    row.draw_button.click()
    assert window.canvas.tool is Tool.REGION and window.act["region"].isChecked()
    _drag(window, (20, 10), (100, 70))
    region = document.region
    assert region is not None
    for got, want in zip(region.getCoords(), (20, 10, 99, 69), strict=True):
        assert abs(got - want) <= 1  # within a screen pixel of the drag
    assert row.current.text() == f"{region.width()} × {region.height()} px, drawn on the photo"
    assert window.canvas.region_item.isVisible()
    assert window.canvas.region_item.rect().toRect() == region

    mask = _request_region(window)
    assert mask is not None and mask.shape == (96, 128)
    rows, cols = np.nonzero(mask)
    assert QRect(cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1) == region
    assert mask.sum() == region.width() * region.height()  # a full rectangle of ones
    # A live preview of a part of the photo gets the part of the region inside it.
    part = QRect(10, 5, 60, 40)
    preview = window.jobs.build_request(window.runs.choices(), part).inputs.extras
    np.testing.assert_array_equal(preview["estimation_region"], mask[5:45, 10:70])

    row.clear_button.click()
    assert document.region is None and _request_region(window) is None
    assert row.current.text() == "Automatic: the most detailed part of the photo"
    assert not window.canvas.region_item.isVisible()


def test_a_step_that_resizes_the_photo_leaves_no_region_until_undone(
    qtbot, window, image_file: Path
) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "deblur", "blind")
    document.set_region(QRect(20, 10, 80, 60))
    half = document.current.image.pixels[::2, ::2]
    document.apply(make_step("Halve", Image(half.copy(), document.current.image.meta)))
    assert document.region is None and _request_region(window) is None
    assert window.task_inputs.region.current.text().startswith("Automatic")
    assert not window.canvas.region_item.isVisible()
    window.tools.undo()
    assert document.region == QRect(20, 10, 80, 60) and window.canvas.region_item.isVisible()


def test_drawing_and_clearing_the_region_are_undone_and_redone(
    qtbot, window, image_file: Path
) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "deblur", "blind")
    window.tools.set_tool(Tool.REGION)
    _drag(window, (10, 10), (60, 50))
    first = document.region
    _drag(window, (20, 30), (90, 70))
    second = document.region
    window.task_inputs.region.clear_button.click()
    assert first is not None and second is not None and first != second
    entries = window.history_panel.list
    texts = [entries.item(i).text() for i in range(entries.count())]
    assert texts[-3:] == ["Draw region", "Draw region", "Clear region"]
    window.tools.undo()
    assert document.region == second and window.canvas.region_item.rect().toRect() == second
    window.tools.undo()
    assert document.region == first
    assert window.task_inputs.region.current.text().startswith(f"{first.width()} × ")
    window.tools.undo()
    assert document.region is None and not window.canvas.region_item.isVisible()
    window.tools.redo()
    window.tools.redo()
    assert document.region == second


def _entry_picture(window, row: int) -> QImage:  # type: ignore[no-untyped-def]
    entries = window.history_panel.list
    return entries.item(row).icon().pixmap(QSize(56, 56)).toImage()


def test_history_shows_regions_with_the_region_tool_icon_not_the_brush(
    qtbot, window, image_file: Path
) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "deblur", "blind")
    document.mask.begin_stroke(QPointF(10, 10), 6)
    document.mask.end_stroke()
    window.tools.set_tool(Tool.REGION)
    _drag(window, (10, 10), (60, 50))
    window.task_inputs.region.clear_button.click()
    stroke, drawn, cleared = (_entry_picture(window, row) for row in (1, 2, 3))
    assert [window.history_panel.list.item(row).text() for row in (2, 3)] == [
        "Draw region",
        "Clear region",
    ]
    assert not stroke.isNull() and not drawn.isNull() and not cleared.isNull()
    assert drawn != stroke and cleared != stroke and cleared != drawn
    tool = window.act["region"].icon().pixmap(QSize(56, 56)).toImage()
    assert drawn == tool  # the picture on the region tool's button


def test_a_click_or_tiny_drag_keeps_the_region(qtbot, window, image_file: Path) -> None:
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "deblur", "blind")
    window.tools.set_tool(Tool.REGION)
    _drag(window, (10, 10), (60, 50))
    drawn = document.region
    _drag(window, (30, 30), (32, 31))
    assert drawn is not None and document.region == drawn
    assert window.canvas.region_item.rect().toRect() == drawn


def test_the_region_row_follows_what_the_engine_declares(
    qtbot, window, registry, image_file: Path
) -> None:
    registry.register(SAMPLED)
    window.engines.set_registry(registry)
    document = open_image(qtbot, window, image_file)
    choose_engine(window, "deblur", "blind")
    window.tools.set_tool(Tool.REGION)
    _drag(window, (20, 10), (100, 70))
    assert document.region is not None

    choose_engine(window, "deblur", "hyper_laplacian")  # takes no region
    row = window.task_inputs.region
    assert not row.isVisibleTo(window.inspector) and not window.act["region"].isEnabled()
    assert window.canvas.tool is Tool.PAN and not window.canvas.region_item.isVisible()
    assert _request_region(window) is None

    choose_engine(window, "denoise", "test-sampled")  # another task, its own region kind
    assert row.isVisibleTo(window.inspector) and row.title.text() == "Depth sample"
    assert row.current.text().endswith("px, drawn on the photo")
    mask = _request_region(window, "depth_area")
    assert mask is not None and mask.sum() == document.region.width() * document.region.height()
    row.clear_button.click()
    assert row.current.text() == "Automatic: the centre of the photo"
