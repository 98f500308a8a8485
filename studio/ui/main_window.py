"""The studio window: it lays out the panels and listens to the parts that do the work.

The window never does heavy work itself: photos are read and converted for display on a
thread pool (`DocumentTabs`), and every job, live preview and batch goes through the
`JobController` to the one worker thread. Actions come from the table in `studio.ui.actions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QPixmap,
    QShowEvent,
)
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QToolBar

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.imageio import read_mask
from studio.core.protocol import HINTS, MASK, STYLE, EngineSpec
from studio.core.registry import Registry
from studio.engine.batch import BatchPlan, BatchSettings, BatchSummary, Recipe, RecipeStep
from studio.ui.actions import MAIN_TOOLBAR, MASK_OPTIONS, MENUS, TOOL_ACTIONS, TOOL_OPTIONS, Actions
from studio.ui.background import Background
from studio.ui.batch_panel import BatchPanel
from studio.ui.canvas import Compare, Tool
from studio.ui.canvas_panel import CanvasPanel
from studio.ui.dialogs import ask_open_file, ask_open_files
from studio.ui.display import contrasting_colour
from studio.ui.docks import Docks, scrolling
from studio.ui.document import Document, Step
from studio.ui.documents import DocumentTabs
from studio.ui.export import Exporter
from studio.ui.history_panel import HistoryPanel
from studio.ui.icons import icon, task_title
from studio.ui.inspector import Inspector
from studio.ui.jobs import Choices, JobController, JobRecord, JobState
from studio.ui.models_dialog import ModelsDialog, ask_model_file
from studio.ui.models_panel import ModelsPanel, availability
from studio.ui.progress_panel import ProgressPanel
from studio.ui.samples import Sample, ensure_samples
from studio.ui.settings import recent_paths, window_settings
from studio.ui.task_inputs import TaskInputs
from studio.ui.worker import JobWorker

PREVIEW_MAX_SIDE = 768
WARM_UP_DELAY_MS = 300


def _thumbnails(samples: list[Sample]) -> list[tuple[Sample, QImage]]:
    """Sample thumbnails as QImages (safe off the GUI thread, unlike QPixmap)."""
    return [
        (sample, QImage(str(sample.images[0])).scaled(360, 240, Qt.AspectRatioMode.KeepAspectRatio))
        for sample in samples
    ]


class MainWindow(QMainWindow):
    """The studio window."""

    sig_document_opened = Signal(object)
    """A photo finished loading and is shown: (Document)."""
    sig_job_ended = Signal(int, str)
    """A job (run, preview or batch) ended: (job id, 'done' | 'failed' | 'cancelled')."""
    sig_registry_ready = Signal()
    """The engines are known and shown in the Models panel."""
    sig_first_exposed = Signal()
    """The window appeared on screen for the first time."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        describe_device: bool = True,
        device: str = "auto",
        samples: bool = True,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Studio")
        self.setObjectName("studioMainWindow")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.resize(1440, 900)
        self.settings = window_settings()
        self.registry = Registry()
        self.last_message = ""
        self._shown: Document | None = None
        self.background = Background(self)
        self.worker = JobWorker(device=device)
        self.jobs = JobController(self.worker, self._choices, self)
        if describe_device:
            self.sig_first_exposed.connect(
                lambda: QTimer.singleShot(
                    WARM_UP_DELAY_MS, self.worker, self.worker.request_warm_up
                )
            )
        self._build_panels()
        self.models_panel.device = device
        self.docks = Docks(
            self,
            {
                "canvas": ("Canvas", self.canvas_panel),
                "models": ("Models", self.models_panel),
                "inspector": ("Inspector", self.inspector),
                "history": ("History", self.history_panel),
                "progress": ("Progress", self.progress_panel),
                "batch": ("Batch", scrolling(self.batch_panel)),
            },
        )
        self.act = Actions(self)
        self._build_menus()
        self._build_toolbars()
        self._build_status_bar()
        self._connect()
        self.worker.start()
        if registry is not None:
            self.set_registry(registry)
        else:
            self._reload_registry()
        if samples:
            self._prepare_welcome()
        self._update_actions()

    # =========================================================================================
    # Building the window

    def _build_panels(self) -> None:
        self.canvas_panel = CanvasPanel()
        self.canvas = self.canvas_panel.view
        self.welcome = self.canvas_panel.welcome
        self.models_panel = ModelsPanel()
        self.inspector = Inspector()
        self.progress_panel = ProgressPanel()
        self.batch_panel = BatchPanel(self.current_recipe, lambda: self.registry)
        self.history_panel = HistoryPanel()
        self.tabs = DocumentTabs(self.canvas_panel.tabs, self.background, self.settings)
        self.exporter = Exporter(self.background, self)
        self.task_inputs = TaskInputs(
            self.inspector,
            self.background,
            self.settings,
            lambda: self.document,
            lambda: self.documents,
        )
        self.brackets = self.task_inputs.brackets
        self.style_well = self.task_inputs.style_well

    def _build_menus(self) -> None:
        bar = self.menuBar()
        for title, names in MENUS.items():
            menu = bar.addMenu(title)
            self.act.add_to(menu, names)
            if "@recent" in names:
                self.recent_menu = menu.addMenu(icon("history"), "Open &recent")
                self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
                menu.insertMenu(self.act["export"], self.recent_menu)
            if "@panels" in names:
                panels = menu.addMenu("&Panels")
                for dock in self.docks.docks.values():
                    panels.addAction(dock.toggleViewAction())
                    menu.insertAction(self.act["reset_layout"], dock.toggleViewAction())
                menu.insertMenu(self.act["reset_layout"], panels)
                menu.insertSeparator(self.act["reset_layout"])

    def _build_toolbars(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("toolbarMain")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.act.add_to(toolbar, MAIN_TOOLBAR)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.main_toolbar = toolbar
        options = self.canvas_panel.tool_bar
        self.act.add_to(options, TOOL_OPTIONS)
        self.canvas_panel.add_tool_widgets()
        self.act.add_to(options, MASK_OPTIONS)
        self.canvas_panel.add_mask_colour()
        self.act["mask_show"].setChecked(True)
        self.set_tool(Tool.PAN)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_image = QLabel()
        self.status_zoom = QLabel()
        self.status_pixel = QLabel()
        self.status_device = QLabel("Device: detecting…")
        self.status_device.setToolTip("Where neural engines run; built-in engines use the CPU")
        for label in (self.status_pixel, self.status_image, self.status_zoom, self.status_device):
            bar.addPermanentWidget(label)

    def _connect(self) -> None:
        jobs = self.jobs
        jobs.sig_job_queued.connect(self._on_job_queued)
        jobs.sig_job_started.connect(self._on_job_started)
        jobs.sig_job_progressed.connect(self.progress_panel.progressed)
        jobs.sig_job_logged.connect(self.progress_panel.logged)
        jobs.sig_job_figure.connect(self.progress_panel.figure)
        jobs.sig_job_done.connect(self._on_job_done)
        jobs.sig_job_failed.connect(self._on_job_failed)
        jobs.sig_job_cancelled.connect(self._on_job_cancelled)
        jobs.sig_job_ended.connect(self.sig_job_ended)
        jobs.sig_busy_changed.connect(self._update_actions)
        jobs.sig_result_ready.connect(lambda document, step: document.apply(step))
        jobs.sig_document_made.connect(self._open_made_document)
        jobs.sig_partial_result.connect(self._on_partial_result)
        jobs.sig_preview_ready.connect(self._on_preview_ready)
        jobs.sig_preview_message.connect(self._on_preview_message)
        jobs.sig_batch_event.connect(self._on_batch_event)
        jobs.sig_batch_finished.connect(self._on_batch_finished)
        jobs.sig_batch_stopped.connect(self.batch_panel.on_stopped)
        self.worker.sig_device_described.connect(self._on_device)
        self.progress_panel.sig_cancel_requested.connect(jobs.cancel)
        canvas = self.canvas
        canvas.sig_files_dropped.connect(self.open_paths)
        canvas.sig_zoom_changed.connect(lambda zoom: self.status_zoom.setText(f"{zoom:.0%}"))
        canvas.sig_cursor_moved.connect(self._on_cursor)
        canvas.sig_view_changed.connect(jobs.schedule_preview)
        canvas.sig_stroke_finished.connect(self._on_layers_edited)
        self.tabs.sig_added.connect(self._on_document_added)
        self.tabs.sig_open_failed.connect(self._on_open_failed)
        self.tabs.sig_current_changed.connect(self._set_document)
        self.tabs.sig_close_requested.connect(self._close)
        self.canvas_panel.tabs.tabBarClicked.connect(self._on_tab_clicked)
        self.canvas_panel.tabs.tabCloseRequested.connect(self.close_document)
        self.canvas_panel.compare.sig_choice_changed.connect(self._update_actions)
        self.canvas_panel.sig_mask_colour_chosen.connect(
            lambda colour: self.settings.setValue("canvas/mask_colour", colour.name())
        )
        self.exporter.sig_message.connect(self.notify)
        self.exporter.sig_exported.connect(
            lambda document, step, _path: document.mark_exported(step)
        )
        self.task_inputs.sig_message.connect(self.notify)
        self.task_inputs.sig_inputs_changed.connect(jobs.schedule_preview)
        self.task_inputs.sig_picture_loaded.connect(
            lambda name, path: self.batch_panel.input_files.update({name: path})
        )
        self.task_inputs.sig_style_loaded.connect(
            lambda path: self.batch_panel.input_files.update({STYLE.name: path})
        )
        self.models_panel.sig_engine_chosen.connect(self._on_engine_chosen)
        self.models_panel.sig_import_requested.connect(self.choose_model_file)
        self.models_panel.sig_manage_requested.connect(self.manage_models)
        self.models_panel.sig_model_file_requested.connect(self.choose_model_file_to_run)
        self.models_panel.sig_models_changed.connect(self._reload_registry)
        self.inspector.sig_values_changed.connect(jobs.schedule_preview)
        self.inspector.sig_run_requested.connect(self.run_current)
        self.history_panel.sig_export_requested.connect(self.export_current)
        self.history_panel.sig_compare_requested.connect(self.compare_step)
        self.batch_panel.sig_start_requested.connect(self.start_batch)
        self.batch_panel.sig_cancel_requested.connect(jobs.cancel_batch)
        self.welcome.sig_open_requested.connect(self.choose_files)
        self.welcome.sig_sample_requested.connect(self.open_sample)
        self.welcome.sig_import_requested.connect(self.choose_model_file)
        self.welcome.sig_manage_requested.connect(self.manage_models)
        self.welcome.sig_models_changed.connect(self._reload_registry)

    # =========================================================================================
    # Layout

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.docks.default_state is None:
            self.docks.remember_default()
            self.docks.restore(self.settings)
            if not self.settings.contains("window/state"):
                QTimer.singleShot(0, self, self.docks.remember_default)
            else:
                QTimer.singleShot(0, self, self.docks.keep_room_for_the_photo)
            handle = self.windowHandle()
            if handle is not None:
                handle.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        handle = self.windowHandle()
        if watched is handle and event.type() == QEvent.Type.Expose and handle.isExposed():
            handle.removeEventFilter(self)
            self.sig_first_exposed.emit()
        return super().eventFilter(watched, event)

    def save_layout(self) -> None:
        self.docks.save(self.settings)

    def reset_layout(self) -> None:
        """Every panel back where it was when Studio first opened."""
        self.docks.reset()

    def set_full_screen(self, on: bool) -> None:
        self.showFullScreen() if on else self.showNormal()

    # =========================================================================================
    # Engines and models

    def set_registry(self, registry: Registry) -> None:
        self.registry = registry
        self.jobs.registry = registry
        self.models_panel.set_registry(registry)
        self.welcome.set_engines(registry, self.models_panel._status)
        self._refresh_installed_models()
        self.sig_registry_ready.emit()

    def _refresh_installed_models(self) -> None:
        def names() -> list[str]:
            from studio.engine.models import installed_models

            return [f"{m.name} ({task_title(m.task)})" for m in installed_models()]

        self.background.call(
            names,
            on_done=lambda found: self.welcome.set_models(found, paths.models_dir()),
            on_error=lambda err: self.welcome.set_models([], paths.models_dir(), str(err)),
        )

    def _reload_registry(self) -> None:
        self.background.call(
            _build_registry,
            on_done=self.set_registry,
            on_error=lambda err: self.notify(f"Could not load the engines: {err}", error=True),
        )

    def choose_model_file(self) -> None:
        path = ask_model_file(self)
        if path:
            self.import_model(path)

    def import_model(self, path: Path) -> None:
        from studio.engine.models import import_model

        self.notify(f"Importing {path.name}…")

        def done(model: Any) -> None:
            self.notify(f"Imported {model.name} for {task_title(model.task)}")
            self._reload_registry()

        self.background.call(
            import_model, path, on_done=done, on_error=lambda e: self.notify(str(e), error=True)
        )

    def choose_model_file_to_run(self) -> None:
        path = ask_model_file(self, "Run a model file")
        if path:
            self.models_panel.set_model_file(path)
            self.notify(f"'Model file' engines will run {path.name}")

    def manage_models(self) -> None:
        dialog = ModelsDialog(self.background, self)
        dialog.sig_models_changed.connect(self._reload_registry)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _on_engine_chosen(self, spec: EngineSpec | None) -> None:
        task = self.models_panel.task
        reason = ""
        if spec is None and task:
            reason = (
                f"No {task_title(task)} engine can run on this machine yet: each needs a model. "
                "Import one with Models › Import model…, or download one in Manage models…"
            )
        self.inspector.set_engine(spec, reason)
        self.task_inputs.show_for(spec)
        brushing = self.canvas.tool in (Tool.BRUSH, Tool.ERASER)
        if spec is not None and spec.takes(MASK):
            self.set_tool(Tool.BRUSH)
        elif spec is not None and spec.takes(HINTS) and brushing:
            self.set_tool(Tool.HINT)  # the mask brush in hand becomes the hint brush
        self._update_actions()
        self.jobs.schedule_preview()

    # =========================================================================================
    # Opening and closing photos

    @property
    def documents(self) -> list[Document]:
        return self.tabs.documents

    @property
    def document(self) -> Document | None:
        return self.tabs.current

    @property
    def loading(self) -> int:
        """Files still being read."""
        return self.tabs.loading

    def choose_files(self) -> None:
        self.open_paths(ask_open_files(self, "Open images"))

    def open_paths(self, paths_: Sequence[str | Path]) -> None:
        """Open image files; folders go to the Batch panel."""
        folders = [Path(p) for p in paths_ if Path(p).is_dir()]
        files = [Path(p) for p in paths_ if not Path(p).is_dir()]
        if folders:
            self.batch_panel.add_sources(folders)
            self.docks.show_batch()
            self.notify(f"Added {len(folders)} folder(s) to the batch")
        for path in files:
            self.open_file(path)

    def open_file(self, path: Path, then: Callable[[Document], None] | None = None) -> None:
        """Read `path` off the GUI thread, then show it in a new tab."""
        self.notify(f"Opening {path.name}…")
        self.tabs.open_file(path, then)

    def _on_document_added(self, document: Document) -> None:
        document.sig_steps_changed.connect(lambda d=document: self._on_steps_changed(d))
        document.sig_timeline_changed.connect(lambda d=document: self._on_timeline(d))
        document.sig_brackets_changed.connect(lambda d=document: self._on_brackets_changed(d))
        self.notify(f"Opened {document.name} · {document.current.size_text}")
        self.sig_document_opened.emit(document)

    def _on_open_failed(self, path: Path, message: str) -> None:
        self.progress_panel.add_failure("open", path.name, message)
        self.docks.show_progress()
        self.notify(message, error=True)

    def close_document(self, index: int | None = None) -> None:
        tabs = self.canvas_panel.tabs
        index = tabs.currentIndex() if index is None else index
        if 0 <= index < len(self.documents):
            self._close(self.documents[index])

    def _close(self, document: Document) -> None:
        if document.has_unexported_result() and not self._confirm_discard([document]):
            return
        self.jobs.cancel_document(document)
        self.tabs.remove(document)

    def _confirm_discard(self, documents: list[Document], jobs: int = 0) -> bool:
        """Ask before losing unexported results (and stopping running jobs)."""
        lines = []
        if documents:
            names = ", ".join(d.name for d in documents)
            lines.append(f"Results not exported yet: {names}. They will be lost.")
        if jobs:
            lines.append(f"{jobs} job(s) still running will be cancelled.")
        answer = QMessageBox.question(
            self,
            "Discard results?",
            "\n".join(lines),
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard

    def _on_tab_clicked(self, index: int) -> None:
        """Clicking a tab leaves the welcome page (Help › Welcome) for the photo."""
        if 0 <= index < len(self.documents) and not self.act["compare"].isChecked():
            self.canvas_panel.show_view()

    def _set_document(self, document: Document | None) -> None:
        shown = self._shown
        if shown is not None and shown in self.documents:
            shown.view = None if self.canvas.fitted else self.canvas.view_state()
        self._shown = document
        self.history_panel.set_document(document)
        self.canvas.set_preview(None)
        if document is None:
            self.act["compare"].setChecked(False)
            self.canvas.set_images(None, None)
            self.canvas.set_layers(None, None)
            self.canvas_panel.show_welcome()
            self.status_image.setText("")
            self.status_zoom.setText("")
        else:
            self._show_step(document)
            if not self.act["compare"].isChecked():
                self.canvas_panel.show_view()
            self._show_mask_colour(document)
            if document.view is None:
                self.canvas.zoom_fit()  # a new photo opens whole, whatever the last one showed
            else:
                self.canvas.apply_view_state(document.view)
            self.task_inputs.show_document(document)
        self._update_actions()

    def _show_step(self, document: Document) -> None:
        self.canvas.set_images(document.before.qimage, document.current.qimage)
        self.canvas.set_layers(document.mask, document.hints)
        self.status_image.setText(document.current.size_text)
        if self.act["compare"].isChecked():
            self._fill_compare()

    def _show_mask_colour(self, document: Document) -> None:
        """The colour the user chose for masks, else the one that stands out on this photo."""
        chosen = self.settings.value("canvas/mask_colour", "")
        if isinstance(chosen, str) and QColor(chosen).isValid():
            self.canvas_panel.show_mask_colour(QColor(chosen))
        else:
            self.canvas_panel.show_mask_colour(QColor(*contrasting_colour(document.current.thumb)))

    def _on_steps_changed(self, document: Document) -> None:
        if document is self.document:
            self.canvas.set_preview(None)
            self._show_step(document)
            self._update_actions()
            self.jobs.schedule_preview()

    def _on_timeline(self, document: Document) -> None:
        """A job, stroke or hint was done, undone or redone."""
        if document is self.document:
            self._on_layers_edited()

    def _on_brackets_changed(self, document: Document) -> None:
        if document is self.document:
            self.brackets.set_brackets(document.brackets)
            self.jobs.schedule_preview()

    def open_sample(self, sample: Sample) -> None:
        """Open a sample with what its job needs (mask, brackets, style) and choose the task."""

        def ready(document: Document) -> None:
            self.models_panel.set_task(sample.task)
            if sample.mask is not None:
                self.background.call(
                    read_mask,
                    sample.mask,
                    (document.original.image.height, document.original.image.width),
                    on_done=lambda mask: document.mask.set_alpha(mask, "Load sample mask"),
                )
            if len(sample.images) > 1:
                self.task_inputs.load_brackets(document, list(sample.images[1:]))
            if sample.style is not None:
                self.task_inputs.load_style(sample.style)

        self.open_file(sample.images[0], then=ready)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in recent_paths(self.settings, "recent/files"):
            action = self.recent_menu.addAction(path.name)
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("No recent files").setEnabled(False)

    def show_welcome(self) -> None:
        self.canvas_panel.show_welcome()
        self.docks["canvas"].show()

    def _prepare_welcome(self) -> None:
        folder = paths.cache_dir() / "samples"

        def done(thumbs: list[tuple[Sample, QImage]]) -> None:
            self.welcome.set_samples([(s, QPixmap.fromImage(t)) for s, t in thumbs])

        self.background.call(
            lambda: _thumbnails(ensure_samples(folder)),
            on_done=done,
            on_error=lambda err: self.welcome.set_samples_error(str(err)),
        )

    # =========================================================================================
    # Masks and tools

    def set_tool(self, tool: Tool) -> None:
        self.canvas_panel.set_tool(tool)
        for kind, name in TOOL_ACTIONS.items():
            self.act[name].setChecked(tool is kind)
        if tool in (Tool.BRUSH, Tool.ERASER) and not self.act["mask_show"].isChecked():
            self.act["mask_show"].setChecked(True)

    def scale_brush(self, factor: float) -> None:
        self.canvas_panel.set_brush_size(max(self.canvas.brush_size * factor, 1.0))

    def mask_clear(self) -> None:
        if self.document is not None:
            self.document.mask.clear()
            self._on_layers_edited()

    def mask_invert(self) -> None:
        if self.document is not None:
            self.document.mask.invert()
            self._on_layers_edited()

    def hints_clear(self) -> None:
        if self.document is not None:
            self.document.hints.clear()
            self._on_layers_edited()

    def choose_mask(self) -> None:
        if self.document is not None:
            path = ask_open_file(self, "Load a mask")
            if path:
                self.load_mask(path)

    def load_mask(self, path: Path) -> None:
        document = self.document
        if document is None:
            return
        size = (document.mask.height, document.mask.width)

        def done(mask: np.ndarray) -> None:
            document.mask.set_alpha(mask, f"Load {path.name}")
            self._on_layers_edited()

        self.background.call(
            read_mask, path, size, on_done=done, on_error=lambda e: self.notify(str(e), error=True)
        )

    def save_mask(self) -> None:
        if self.document is not None:
            self.exporter.save_mask(self.document)

    def _on_layers_edited(self) -> None:
        self._update_actions()
        self.jobs.schedule_preview()

    # =========================================================================================
    # Undo, compare, zoom feedback

    def undo(self) -> None:
        """Undo the last job, stroke or hint of the photo, and say what was undone."""
        stack = self.document.undo_stack if self.document is not None else None
        if stack is not None and stack.canUndo():
            text = stack.undoText()
            stack.undo()
            self.notify(f"Undid {text}")

    def redo(self) -> None:
        stack = self.document.undo_stack if self.document is not None else None
        if stack is not None and stack.canRedo():
            text = stack.redoText()
            stack.redo()
            self.notify(f"Redid {text}")

    def set_before(self, on: bool) -> None:
        if on:
            self.act["split"].setChecked(False)
        after = Compare.SPLIT if self.act["split"].isChecked() else Compare.AFTER
        self.canvas.set_compare(Compare.BEFORE if on else after)

    def set_split(self, on: bool) -> None:
        if on:
            self.act["before"].setChecked(False)
            visible = self.canvas.visible_image_rect()
            width = self.canvas.image_item.boundingRect().width()
            if width and not visible.isEmpty():
                self.canvas.set_split((visible.center().x() + 0.5) / width)
        self.canvas.set_compare(Compare.SPLIT if on else Compare.AFTER)

    def set_compare_ab(self, on: bool) -> None:
        if on and self.document is not None:
            self._fill_compare()
            self.canvas_panel.show_compare()
        elif self.document is not None:
            self.canvas_panel.show_view()
        self._update_actions()

    def _fill_compare(self, a: int | None = None, b: int | None = None) -> None:
        document = self.document
        if document is None:
            return
        current_a, current_b = self.canvas_panel.compare.chosen()
        same = self.canvas_panel.compare.steps == document.steps
        a = a if a is not None else (current_a if same else max(document.index - 1, 0))
        b = b if b is not None else (current_b if same else document.index)
        self.canvas_panel.compare.set_steps(list(document.steps), a, b)

    def compare_step(self, index: int, slot: str) -> None:
        """Show step `index` as A or B in the A/B view (and open that view)."""
        if self.document is None:
            return
        self._fill_compare()
        self.canvas_panel.compare.choose(slot, index)
        self.act["compare"].setChecked(True)

    def _on_cursor(self, x: int, y: int) -> None:
        if self.document is None or x < 0:
            self.status_pixel.setText("")
            return
        image = self.document.current.image
        if not (0 <= y < image.height and 0 <= x < image.width):
            return
        values = image.pixels[y, x]
        names = "RGB" if len(values) == 3 else "L"
        text = " ".join(f"{n} {v:.3f}" for n, v in zip(names, values, strict=True))
        self.status_pixel.setText(f"x {x}  y {y}  ·  {text}")

    def _on_device(self, description: str) -> None:
        self.status_device.setText(f"Device: {description}")

    @property
    def device_description(self) -> str:
        return self.jobs.device_description

    # =========================================================================================
    # Jobs: the window gathers the user's choices and shows what the controller reports

    def _choices(self) -> Choices:
        spec = self.models_panel.current_engine()
        status = availability(spec, self.models_panel.context) if spec is not None else None
        return Choices(
            spec=spec,
            document=self.document,
            params=self.inspector.params_json() if self.inspector.is_valid() else {},
            opacity=self.inspector.opacity(),
            only_in_mask=self.inspector.only_in_mask(),
            params_valid=self.inspector.is_valid(),
            unavailable_reason=status.reason if status is not None and not status.ok else "",
            model_path=self.models_panel.model_path,
            preview_rect=self.preview_rect(),
        )

    def preview_rect(self) -> QRect:
        """The visible part of the image, at most PREVIEW_MAX_SIDE pixels a side (centred)."""
        visible = self.canvas.visible_image_rect()
        width = min(visible.width(), PREVIEW_MAX_SIDE)
        height = min(visible.height(), PREVIEW_MAX_SIDE)
        centre = visible.center()
        rect = QRect(centre.x() - width // 2, centre.y() - height // 2, width, height)
        return rect.intersected(visible)

    def run_current(self) -> int | None:
        """Queue the current engine on the current image; returns the job id."""
        try:
            job_id = self.jobs.run()
        except StudioError as err:
            self.notify(err.window_text, error=True)
            return None
        self.canvas.set_preview(None)
        self.docks["progress"].raise_()
        return job_id

    def cancel_current(self) -> None:
        """Cancel the running job (or the newest queued one)."""
        if self.jobs.cancel_current():
            self.notify("Cancelling…")

    def current_recipe(self) -> Recipe:
        """One step: the current task, engine, parameters and opacity."""
        choices = self._choices()
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

    def start_batch(self, plan: BatchPlan, settings: BatchSettings) -> int:
        return self.jobs.start_batch(plan, settings, self.models_panel.model_path)

    def _on_job_queued(self, record: JobRecord) -> None:
        self.progress_panel.add(record)
        self.notify(f"Queued {task_title(record.task)} · {record.engine}")

    def _on_job_started(self, job_id: int, label: str) -> None:
        self.progress_panel.started(job_id)
        self.notify(f"Running {label}…")

    def _on_job_done(self, job_id: int, label: str, seconds: float) -> None:
        self.progress_panel.finished(job_id, JobState.DONE, seconds=seconds)
        self.notify(f"{label}: done in {seconds:.1f} s")

    def _on_job_failed(self, job_id: int, label: str, message: str, details: str) -> None:
        self.progress_panel.finished(job_id, JobState.FAILED, message, details)
        self.docks.show_progress()
        self.notify(f"{label} failed: {message}", error=True)

    def _on_job_cancelled(self, job_id: int, label: str) -> None:
        self.progress_panel.finished(job_id, JobState.CANCELLED)
        self.notify(f"{label}: cancelled")

    def _open_made_document(self, name: str, step: Step, source: Document) -> None:
        """A result made from a set of inputs (HDR brackets) opens as its own document."""
        document = Document(None, step, name=name, brackets=list(source.brackets), is_result=True)
        self.tabs.add(document)

    def _on_partial_result(self, document: Document, image: QImage) -> None:
        if document is self.document:
            self.canvas.set_preview(image, QRect(0, 0, image.width(), image.height()))

    def _on_preview_ready(self, document: Document, image: QImage, rect: QRect) -> None:
        if document is self.document:
            self.canvas.set_preview(image, rect)
            self.statusBar().showMessage("Preview of the visible area", 3000)

    def _on_preview_message(self, text: str, error: bool) -> None:
        if error:
            self.notify(text, error=True)
        else:
            self.statusBar().showMessage(text, 2000)

    def _on_batch_event(self, job_id: int, event: Any, message: str) -> None:
        self.batch_panel.on_event(event)
        statuses = self.batch_panel.statuses.values()
        finished = sum(status.value in ("done", "failed", "skipped") for status in statuses)
        self.progress_panel.progressed(job_id, finished / (len(statuses) or 1), message)

    def _on_batch_finished(self, summary: BatchSummary) -> None:
        self.batch_panel.on_finished(summary)
        self.notify(self.batch_panel.status.text())

    # =========================================================================================
    # Export

    def export_current(self) -> None:
        if self.document is not None:
            self.exporter.export(self.document)

    def export_step(self, step: Step, path: Path, bit_depth: int | None, quality: int = 95) -> None:
        """Write `step` of the current document off the GUI thread."""
        assert self.document is not None
        self.exporter.export_step(self.document, step, path, bit_depth, quality)

    # =========================================================================================
    # Feedback

    def notify(self, message: str, error: bool = False) -> None:
        """Show a message in the status bar (red for errors)."""
        self.last_message = message
        bar = self.statusBar()
        bar.setStyleSheet("QStatusBar { color: #f0776f; }" if error else "")
        bar.showMessage(message, 10000 if error else 6000)

    def _update_actions(self) -> None:
        document = self.document
        has_doc = document is not None
        self.act.set_document_open(has_doc)
        stack = document.undo_stack if document is not None else None
        for name, can, text in (
            ("undo", stack is not None and stack.canUndo(), stack and stack.undoText()),
            ("redo", stack is not None and stack.canRedo(), stack and stack.redoText()),
        ):
            self.act[name].setEnabled(can)
            self.act[name].setText(
                f"&{name.capitalize()} {text}" if can else f"&{name.capitalize()}"
            )
        self.act["cancel"].setEnabled(bool(self.jobs.active_ids()))
        spec = self.models_panel.current_engine()
        reason = "" if has_doc else "Open an image first"
        self.inspector.set_run_allowed(has_doc and spec is not None, reason)
        self.act["run"].setEnabled(has_doc and spec is not None)

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About Studio",
            "<b>Studio</b><br>An offline AI photo studio: denoise, deblur, inpaint, HDR, "
            "colorize and style transfer, with built-in and neural engines.",
        )

    # =========================================================================================
    # Qt events

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths_ = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths_:
            event.acceptProposedAction()
            self.open_paths(paths_)

    def closeEvent(self, event: QCloseEvent) -> None:
        unexported = [d for d in self.documents if d.has_unexported_result()]
        running = len(self.jobs.active_ids())
        if (unexported or running) and not self._confirm_discard(unexported, running):
            event.ignore()
            return
        self.save_layout()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the worker and the thread pool (idempotent)."""
        self.jobs.cancel_preview()
        if self.worker.isRunning():
            self.worker.shutdown()
        self.background.shutdown()


def _build_registry() -> Registry:
    from studio.engine.registry import build_registry

    return build_registry()
