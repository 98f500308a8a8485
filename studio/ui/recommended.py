""" "Get the recommended models": the set, its size and licences, a progress bar and Cancel.

Shown on the first-run page (every task) and in the Models panel (the current task). The
download runs on a worker thread; the GUI thread only shows its progress.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.engine.models import CatalogEntry, Recommendation, recommendations
from studio.engine.models.recommended import (
    DownloadCancelled,
    download_recommended,
    missing_recommended,
    set_size,
)
from studio.ui.background import Background
from studio.ui.icons import icon, task_title


def size_text(known: int, unknown: int) -> str:
    text = f"{known / 2**20:.0f} MB" if known else ""
    if unknown:
        text += (" + " if text else "") + f"{unknown} of unknown size"
    return text


class _Relay(QObject):
    sig_progressed = Signal(str, float, float)
    """From the worker thread: (model name, bytes done, bytes in all or -1 when unknown).

    Floats, not None: PySide6 loses a reference to None on each cross-thread emit."""

    def forward(self, name: str, done: int, total: int | None) -> None:
        self.sig_progressed.emit(name, float(done), float(total or -1))


class RecommendedOffer(QWidget):
    """The recommended models not installed yet, with the button that gets them."""

    sig_models_changed = Signal()
    """Recommended models were installed: the engines should be listed again."""

    def __init__(
        self, task: str | None = None, parent: QWidget | None = None, *, compact: bool = False
    ) -> None:
        super().__init__(parent)
        self.task = task
        self.compact = compact
        self.downloading = False
        self._background = Background(self, workers=1)
        self._cancel = threading.Event()
        self._relay = _Relay(self)
        self._relay.sig_progressed.connect(self._on_progress)
        self.get_button = QPushButton(icon("download"), "Get the recommended models")
        self.get_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.details = QLabel()
        self.details.setWordWrap(not compact)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.progress = QProgressBar()
        self.progress.setFixedHeight(8)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel()
        self.status.setObjectName("dimText")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        if compact:  # one line: what, then the button beside it; clipped, never widening
            self.details.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            buttons.addWidget(self.details, 1)
        buttons.addWidget(self.get_button)
        buttons.addWidget(self.cancel_button)
        if not compact:
            buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if not compact:
            layout.addWidget(self.details)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.refresh()

    def set_task(self, task: str | None) -> None:
        if task != self.task and not self.downloading:
            self.task = task
            self.refresh()

    def refresh(self) -> None:
        """Read the catalog and the installed models off the GUI thread, then show the offer."""
        if self.downloading:
            return  # it refreshes when the download ends
        self._background.call(_offer, self.task, on_done=self._show, on_error=self._failed)

    def start(self) -> None:
        self.downloading = True
        self._cancel.clear()
        self.get_button.setEnabled(False)
        self.cancel_button.show()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText("Starting the download…")
        self._background.call(
            download_recommended,
            self.task,
            self._relay.forward,
            self._cancel.is_set,
            on_done=self._finished,
            on_error=self._failed,
        )

    def cancel(self) -> None:
        self._cancel.set()
        self.status.setText("Cancelling…")

    def shutdown(self) -> None:
        """Stop a running download (it resumes next time) and the worker thread."""
        self._cancel.set()
        self._background.shutdown()

    def _show(self, offer: tuple[list[CatalogEntry], list[Recommendation]]) -> None:
        missing, unavailable = offer
        line = _short_line if self.compact else _line
        offers = [line(entry) for entry in missing]
        lines = list(offers)
        if unavailable:
            tasks = ", ".join(task_title(r.task) for r in unavailable)
            lines.append(f"<i>No model qualifies yet for {tasks}</i>")
        self.details.setText("<br>".join(lines))
        reasons = [f"{task_title(r.task)}: {r.reason}" for r in unavailable]
        clipped = offers if self.compact else []  # a compact line may be cut: all of it here
        self.details.setToolTip("<br>".join([*clipped, *reasons]))
        self.details.setVisible(bool(lines))
        known, unknown = set_size(missing)
        noun = "model" if len(missing) == 1 else "models"
        size = size_text(known, unknown)
        self.get_button.setText(
            f"Get it ({size})" if self.compact else f"Get the recommended {noun} ({size})"
        )
        self.get_button.setToolTip(f"Download, verify and install the recommended {noun}")
        self.get_button.setVisible(bool(missing))
        self.get_button.setEnabled(True)
        if not missing:
            self.status.setText(
                "" if unavailable or self.compact else "The recommended models are installed."
            )

    def _on_progress(self, name: str, done: float, total: float) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(done / total * 1000))
        self.status.setText(f"Getting {name}… {done / 2**20:.0f} MB")

    def _finished(self, installed: list[Any]) -> None:
        self._idle(f"Installed {', '.join(model.name for model in installed)}.")
        self.sig_models_changed.emit()
        self.refresh()

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, DownloadCancelled):
            self._idle(
                "Cancelled. What was already fetched is kept and the download resumes next time."
            )
        else:
            text = getattr(error, "window_text", str(error))
            self._idle(f"Could not get the recommended models: {text}")
        self.refresh()

    def _idle(self, message: str) -> None:
        self.downloading = False
        self.cancel_button.hide()
        self.progress.hide()
        self.get_button.setEnabled(True)
        self.status.setText(message)


def _offer(task: str | None) -> tuple[list[CatalogEntry], list[Recommendation]]:
    """The missing recommended models, and the tasks for which none qualifies."""
    missing = missing_recommended(task)
    return missing, [r for r in recommendations(task) if r.entry is None]


def _short_line(entry: CatalogEntry) -> str:
    return f"Recommended: {entry.name} — licence {entry.licence}"


def _line(entry: CatalogEntry) -> str:
    size = f", {entry.size / 2**20:.0f} MB" if entry.size else ""
    return f"<b>{task_title(entry.task)}</b>: {entry.name} — licence {entry.licence}{size}"
