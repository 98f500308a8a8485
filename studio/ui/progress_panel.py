"""The Progress panel: every job with its state, bar, elapsed time, ETA, cancel and log."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QEvent, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui.icons import icon, task_icon, task_title
from studio.ui.jobs import FINISHED_STATES, JobRecord, JobState

_NO_JOBS = "No jobs yet. Choose a task and press Run."
LOG_LIMIT = 2000
"""Lines kept per job (progress steps and the engine's own log lines)."""
FIGURE_SIDE = 64
"""Largest side, in screen pixels, of a picture an engine reports (an estimated kernel)."""


def format_duration(seconds: float) -> str:
    """'0.4 s' under a minute, else like format_seconds."""
    return f"{seconds:.1f} s" if seconds < 60 else format_seconds(seconds)


def format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


class JobRow(QFrame):
    """One job in the list."""

    def __init__(
        self,
        record: JobRecord,
        on_cancel: Callable[[], None],
        on_details_shown: Callable[[QWidget], None] = lambda details: None,
    ) -> None:
        super().__init__()
        self.setObjectName("jobRow")
        self.record = record
        self._on_details_shown = on_details_shown
        glyph = QLabel()
        glyph.setPixmap(task_icon(record.task).pixmap(20, 20))
        self.title = QLabel(" · ".join(p for p in (task_title(record.task), record.engine) if p))
        self.title.setObjectName("engineName")
        self.subtitle = QLabel(" · ".join(p for p in (record.subject, record.device) if p))
        self.subtitle.setObjectName("dimText")
        self.state = QLabel()
        self.times = QLabel()
        self.times.setObjectName("dimText")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.message = QLabel()
        self.message.setObjectName("dimText")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(icon("close-circle-outline"))
        self.cancel_button.setToolTip("Cancel this job (Esc cancels the running one)")
        self.cancel_button.clicked.connect(on_cancel)
        self.details_button = QToolButton()
        self.details_button.setText("Details")
        self.details_button.setIcon(icon("text-box-outline"))
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show the log and technical details")
        self.details_button.toggled.connect(self._toggle_details)
        self._details: QPlainTextEdit | None = None
        self.figures: list[tuple[str, QLabel]] = []
        self._styled_state: JobState | None = None

        head = QHBoxLayout()
        head.addWidget(glyph)
        head.addWidget(self.title)
        head.addWidget(self.subtitle, 1)
        head.addWidget(self.state)
        head.addWidget(self.details_button)
        head.addWidget(self.cancel_button)
        foot = QHBoxLayout()
        foot.addWidget(self.message, 1)
        foot.addWidget(self.times)
        layout = QVBoxLayout()
        layout.setSpacing(3)
        layout.addLayout(head)
        layout.addWidget(self.bar)
        layout.addLayout(foot)
        self._layout = layout
        self._figures = QHBoxLayout()
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 6)
        row.addLayout(layout, 1)
        row.addLayout(self._figures)
        self.refresh()

    @property
    def details(self) -> QPlainTextEdit:
        """The log and traceback view, made on first use (rows are created often)."""
        if self._details is None:
            self._details = QPlainTextEdit()
            self._details.setReadOnly(True)
            self._details.setMaximumHeight(160)
            self._details.hide()
            self._layout.addWidget(self._details)
        return self._details

    def show_figure(self, title: str, array: np.ndarray) -> None:
        """Show a picture the engine reported (the estimated blur kernel) at the row's right,
        its title as tooltip."""
        picture = QLabel()
        picture.setPixmap(QPixmap.fromImage(figure_image(array)))
        picture.setToolTip(f"{title}: {figure_size(array)}")
        self._figures.addWidget(picture)
        self.figures.append((title, picture))

    def _toggle_details(self, shown: bool) -> None:
        self.details.setVisible(shown)
        if shown:
            self._fill_details()
            self._on_details_shown(self.details)

    def _fill_details(self) -> None:
        text = "\n".join(self.record.log)
        if self.record.details:
            text = (text + "\n\n" if text else "") + self.record.details
        self.details.setPlainText(text or "No log lines.")

    def refresh(self) -> None:
        """Show the record; restyling (costly with a style sheet) only when the state changes."""
        record = self.record
        if record.state is not self._styled_state:
            self._styled_state = record.state
            self.state.setText(record.state.value.capitalize())
            names = {JobState.FAILED: "errorText", JobState.CANCELLED: "warningText"}
            _restyle(self.state, objectName=names.get(record.state, "dimText"))
            _restyle(self.bar, state=record.state.value)
            if record.state is JobState.FAILED:
                _restyle(self.message, objectName="errorText")
            self.cancel_button.setVisible(record.state not in FINISHED_STATES)
        busy = record.state is JobState.RUNNING and record.fraction == 0.0
        self.bar.setMaximum(0 if busy else 1000)  # 0: Qt's busy bar, for a step not yet measured
        self.bar.setValue(int(record.fraction * 1000))
        text = record.error if record.state is JobState.FAILED else record.message
        if self.message.text() != text:
            self.message.setText(text)
            self.message.setVisible(bool(text))
        self.refresh_times()
        if self._details is not None and self._details.isVisible():
            self._fill_details()

    def refresh_times(self) -> None:
        record = self.record
        if record.state is JobState.DONE or (
            record.state in FINISHED_STATES and not record.started
        ):
            text = ""
        elif record.started:
            text = f"Elapsed {format_seconds(record.elapsed())}"
        else:
            text = "Waiting"
        eta = record.eta()
        if eta is not None:
            text += f" · about {format_seconds(eta)} left"
        if self.times.text() != text:
            self.times.setText(text)


def figure_size(array: np.ndarray) -> str:
    """The extent of a reported picture's non-zero part ('14 × 20 px')."""
    rows, cols = np.nonzero(array > 0)
    return f"{np.ptp(cols) + 1} × {np.ptp(rows) + 1} px" if rows.size else "empty"


def figure_image(array: np.ndarray, side: int = FIGURE_SIDE) -> QImage:
    """A 2-D array as a grey picture, its largest value white, cropped to its non-zero part
    plus one pixel and enlarged by a whole factor to at most `side` px."""
    rows, cols = np.nonzero(array > 0)
    if rows.size:
        array = np.pad(array[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], 1)
    peak = float(array.max())
    grey = np.round(255 * np.clip(array / peak if peak > 0 else array, 0, 1)).astype(np.uint8)
    factor = max(1, side // max(grey.shape))
    grey = np.ascontiguousarray(np.kron(grey, np.ones((factor, factor), np.uint8)))
    height, width = grey.shape
    return QImage(grey.data, width, height, width, QImage.Format.Format_Grayscale8).copy()


def _restyle(widget: QWidget, **properties: str) -> None:
    for name, value in properties.items():
        if name == "objectName":
            widget.setObjectName(value)
        else:
            widget.setProperty(name, value)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


class ProgressPanel(QWidget):
    """The job list, newest at the top."""

    sig_cancel_requested = Signal(int)
    """The user asked to cancel a job: (job id)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.records: dict[int, JobRecord] = {}
        self._failures = 0
        self._rows: dict[int, JobRow] = {}
        self._list = QVBoxLayout()
        self._list.setContentsMargins(6, 6, 6, 6)
        self._list.setSpacing(6)
        self._list.addStretch(1)
        self._host = host = QWidget()
        host.setLayout(self._list)
        self._scroll = scroll = QScrollArea()
        scroll.setObjectName("panelScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(host)
        self._empty = QLabel(_NO_JOBS)
        self._empty.setObjectName("dimText")
        clear = QToolButton()
        clear.setIcon(icon("broom"))
        clear.setText("Clear finished")
        clear.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        clear.clicked.connect(self.clear_finished)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 6, 6, 0)
        bar.addWidget(self._empty, 1)
        bar.addStretch(0)
        bar.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(scroll, 1)
        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._tick)

    def add(self, record: JobRecord) -> None:
        self.records[record.id] = record
        row = JobRow(
            record, lambda: self.sig_cancel_requested.emit(record.id), self._bring_into_view
        )
        self._rows[record.id] = row
        self._list.insertWidget(0, row)
        self._empty.setText(f"{len(self.records)} job(s)")

    def _bring_into_view(self, widget: QWidget) -> None:
        """Scroll a job's log into sight once opened (in a panel one row high it opened out of
        sight): all of it with as much of its row as there is room for, else its first lines."""
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)  # the log's room
        top = widget.mapTo(self._host, QPoint(0, 0)).y()
        bottom_in_sight = top + widget.height() - self._scroll.viewport().height()
        self._scroll.verticalScrollBar().setValue(min(top, bottom_in_sight))

    def add_failure(self, task: str, subject: str, message: str) -> None:
        """List something that failed outside a job (a file that would not open)."""
        self._failures += 1
        record = JobRecord(-self._failures, task, subject, "", "", JobState.FAILED, error=message)
        record.log.append(f"Error: {message}")
        self.add(record)
        self._rows[record.id].refresh()

    def started(self, job_id: int) -> None:
        record = self.records.get(job_id)
        if record is None:
            return
        record.state = JobState.RUNNING
        record.started = time.monotonic()
        self._clock.start()
        self._rows[job_id].refresh()

    def progressed(self, job_id: int, fraction: float, message: str) -> None:
        record = self.records.get(job_id)
        if record is None:
            return
        record.set_fraction(fraction)
        if message and message != record.message and len(record.log) < LOG_LIMIT:
            record.log.append(f"{format_seconds(record.elapsed())}  {message}")
        record.message = message
        self._rows[job_id].refresh()

    def figure(self, job_id: int, title: str, array: np.ndarray) -> None:
        row = self._rows.get(job_id)
        if row is not None:
            row.show_figure(title, array)

    def logged(self, job_id: int, line: str) -> None:
        record = self.records.get(job_id)
        if record is not None:
            record.log.append(line)

    def finished(
        self,
        job_id: int,
        state: JobState,
        error: str = "",
        details: str = "",
        seconds: float | None = None,
    ) -> None:
        """A job ended; `seconds` is how long it ran on the worker, when known."""
        record = self.records.get(job_id)
        if record is None:
            return
        record.state = state
        record.ended = time.monotonic()
        if seconds is not None:
            record.started = record.ended - seconds
        if state is JobState.DONE:
            record.fraction = 1.0
            record.message = f"Done in {format_duration(record.elapsed())}"
            record.log.append(record.message)
        elif state is JobState.CANCELLED:
            record.message = "Cancelled"
        record.error, record.details = error, details
        if error:
            record.log.append(f"Error: {error}")
        self._rows[job_id].refresh()

    def row(self, job_id: int) -> JobRow:
        return self._rows[job_id]

    def running_ids(self) -> list[int]:
        return [i for i, r in self.records.items() if r.state not in FINISHED_STATES]

    def clear_finished(self) -> None:
        for job_id in [i for i, r in self.records.items() if r.state in FINISHED_STATES]:
            self.records.pop(job_id)
            self._rows.pop(job_id).deleteLater()
        self._empty.setText(
            f"{len(self.records)} job(s)"
            if self.records
            else "No jobs yet. Choose a task and press Run."
        )

    def _tick(self) -> None:
        running = [self._rows[i] for i in self.running_ids()]
        for row in running:
            row.refresh_times()
        if not running:
            self._clock.stop()
