"""The window's side of jobs: it gathers the user's choices for `JobController` (in
`studio.ui.jobs`) and shows what the controller reports in the panels and status bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRect
from PySide6.QtGui import QImage

from studio.core.errors import StudioError
from studio.engine.batch import BatchPlan, BatchSettings, BatchSummary, Recipe, RecipeStep
from studio.ui.document import Document, Step
from studio.ui.icons import task_title
from studio.ui.jobs import Choices, JobRecord, JobState
from studio.ui.models_panel import availability
from studio.ui.progress_panel import format_duration

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

PREVIEW_MAX_SIDE = 768


class WindowJobs:
    """Runs, previews and batches as the window starts them and shows their course."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window

    # -- what the user chose ------------------------------------------------------------------

    def choices(self) -> Choices:
        w = self.window
        spec = w.models_panel.current_engine()
        status = availability(spec, w.models_panel.context) if spec is not None else None
        inspector = w.inspector
        return Choices(
            spec=spec,
            document=w.document,
            params=inspector.params_json() if inspector.is_valid() else {},
            opacity=inspector.opacity(),
            only_in_mask=inspector.only_in_mask(),
            params_valid=inspector.is_valid(),
            unavailable_reason=status.reason if status is not None and not status.ok else "",
            model_path=w.models_panel.model_path,
            preview_rect=self.preview_rect(),
        )

    def preview_rect(self) -> QRect:
        """The visible part of the image, at most PREVIEW_MAX_SIDE pixels a side (centred)."""
        visible = self.window.canvas.visible_image_rect()
        width = min(visible.width(), PREVIEW_MAX_SIDE)
        height = min(visible.height(), PREVIEW_MAX_SIDE)
        centre = visible.center()
        rect = QRect(centre.x() - width // 2, centre.y() - height // 2, width, height)
        return rect.intersected(visible)

    def current_recipe(self) -> Recipe:
        """One step: the current task, engine, parameters and opacity."""
        choices = self.choices()
        if choices.spec is None:
            raise StudioError("Choose a task and an engine in the Models panel")
        if not choices.params_valid:
            raise StudioError("Fix the highlighted parameters in the Inspector first")
        step = RecipeStep(
            task=choices.spec.task,
            engine=choices.spec.id,
            params=choices.params,
            opacity=choices.opacity,
        )
        return Recipe(steps=[step])

    # -- starting and stopping ----------------------------------------------------------------

    def run_current(self) -> int | None:
        """Queue the current engine on the current image; returns the job id."""
        w = self.window
        try:
            job_id = w.jobs.run()
        except StudioError as err:
            w.notify(err.window_text, error=True)
            return None
        w.canvas.set_preview(None)
        w.docks["progress"].raise_()
        return job_id

    def cancel_current(self) -> None:
        """Cancel the running job (or the newest queued one)."""
        if self.window.jobs.cancel_current():
            self.window.notify("Cancelling…")

    def start_batch(self, plan: BatchPlan, settings: BatchSettings) -> int:
        return self.window.jobs.start_batch(plan, settings, self.window.models_panel.model_path)

    # -- what the controller reports ----------------------------------------------------------

    def on_queued(self, record: JobRecord) -> None:
        self.window.progress_panel.add(record)
        self.window.notify(f"Queued {task_title(record.task)} · {record.engine}")

    def on_started(self, job_id: int, label: str) -> None:
        self.window.progress_panel.started(job_id)
        self.window.notify(f"Running {label}…")

    def on_done(self, job_id: int, label: str, seconds: float) -> None:
        self.window.progress_panel.finished(job_id, JobState.DONE, seconds=seconds)
        self.window.notify(f"{label}: done in {format_duration(seconds)}")

    def on_failed(self, job_id: int, label: str, message: str, details: str) -> None:
        w = self.window
        w.progress_panel.finished(job_id, JobState.FAILED, message, details)
        w.docks.show_progress()
        w.notify(f"{label} failed: {message}", error=True)

    def on_cancelled(self, job_id: int, label: str) -> None:
        self.window.progress_panel.finished(job_id, JobState.CANCELLED)
        self.window.notify(f"{label}: cancelled")

    def open_made_document(self, name: str, step: Step, source: Document) -> None:
        """A result made from a set of inputs (HDR brackets) opens as its own document."""
        document = Document(None, step, name=name, brackets=list(source.brackets), is_result=True)
        self.window.tabs.add(document)

    def on_partial_result(self, document: Document, image: QImage) -> None:
        if document is self.window.document:
            self.window.canvas.set_preview(image, QRect(0, 0, image.width(), image.height()))

    def on_preview_ready(self, document: Document, image: QImage, rect: QRect) -> None:
        if document is self.window.document:
            self.window.canvas.set_preview(image, rect)
            self.window.statusBar().showMessage("Preview of the visible area", 3000)

    def on_preview_message(self, text: str, error: bool) -> None:
        if error:
            self.window.notify(text, error=True)
        else:
            self.window.statusBar().showMessage(text, 2000)

    def on_batch_event(self, job_id: int, event: Any, message: str) -> None:
        w = self.window
        w.batch_panel.on_event(event)
        statuses = w.batch_panel.statuses.values()
        finished = sum(status.value in ("done", "failed", "skipped") for status in statuses)
        w.progress_panel.progressed(job_id, finished / (len(statuses) or 1), message)

    def on_batch_finished(self, summary: BatchSummary) -> None:
        self.window.batch_panel.on_finished(summary)
        self.window.notify(self.window.batch_panel.status.text())
