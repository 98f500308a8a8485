"""The studio window: it lays out the panels and connects them to the parts that do the work.

The window never does heavy work itself: photos are read and converted for display on a
thread pool (`DocumentTabs`), and every job, live preview and batch goes through the
`JobController` to the one worker thread. Actions come from the table in `studio.ui.actions`.
What the window does is split by concern: its photos (`window_photos`), editing tools
(`window_tools`), comparison views (`window_views`), engines and models (`window_models`) and
its side of jobs (`window_jobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QToolBar

from studio.core.protocol import STYLE
from studio.core.registry import Registry
from studio.ui.actions import MAIN_TOOLBAR, MASK_OPTIONS, MENUS, TOOL_OPTIONS, Actions
from studio.ui.background import Background
from studio.ui.batch_panel import BatchPanel
from studio.ui.canvas import Tool
from studio.ui.canvas_panel import CanvasPanel
from studio.ui.docks import Docks, scrolling
from studio.ui.document import Document
from studio.ui.documents import DocumentTabs
from studio.ui.export import Exporter
from studio.ui.history_panel import HistoryPanel
from studio.ui.icons import icon
from studio.ui.inspector import Inspector
from studio.ui.jobs import JobController
from studio.ui.models_panel import ModelsPanel
from studio.ui.progress_panel import ProgressPanel
from studio.ui.settings import window_settings
from studio.ui.task_inputs import TaskInputs
from studio.ui.window_jobs import WindowJobs
from studio.ui.window_models import WindowModels
from studio.ui.window_photos import WindowPhotos
from studio.ui.window_tools import WindowTools, takes_a_region
from studio.ui.window_views import WindowViews
from studio.ui.worker import JobWorker

WARM_UP_DELAY_MS = 300


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
        self.photos = WindowPhotos(self)
        self.tools = WindowTools(self)
        self.views = WindowViews(self)
        self.engines = WindowModels(self)
        self.runs = WindowJobs(self)
        self.background = Background(self)
        self.worker = JobWorker(device=device)
        self.jobs = JobController(self.worker, self.runs.choices, self)
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
                "models": ("Models", scrolling(self.models_panel, sideways=False)),
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
            self.engines.set_registry(registry)
        else:
            self.engines.reload_registry()
        if samples:
            self.photos.prepare_welcome()
        self.update_actions()

    # =========================================================================================
    # Building the window

    def _build_panels(self) -> None:
        self.canvas_panel = CanvasPanel()
        self.canvas = self.canvas_panel.view
        self.welcome = self.canvas_panel.welcome
        self.models_panel = ModelsPanel()
        self.inspector = Inspector()
        self.progress_panel = ProgressPanel()
        self.batch_panel = BatchPanel(self.runs.current_recipe, lambda: self.registry)
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
                self.recent_menu.aboutToShow.connect(self.photos.fill_recent_menu)
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
        self.tools.set_tool(Tool.PAN)

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
        self._connect_jobs()
        self._connect_canvas()
        self._connect_panels()

    def _connect_jobs(self) -> None:
        jobs, runs = self.jobs, self.runs
        jobs.sig_job_queued.connect(runs.on_queued)
        jobs.sig_job_started.connect(runs.on_started)
        jobs.sig_job_progressed.connect(self.progress_panel.progressed)
        jobs.sig_job_logged.connect(self.progress_panel.logged)
        jobs.sig_job_figure.connect(self.progress_panel.figure)
        jobs.sig_job_done.connect(runs.on_done)
        jobs.sig_job_failed.connect(runs.on_failed)
        jobs.sig_job_cancelled.connect(runs.on_cancelled)
        jobs.sig_job_ended.connect(self.sig_job_ended)
        jobs.sig_busy_changed.connect(self.update_actions)
        jobs.sig_result_ready.connect(lambda document, step: document.apply(step))
        jobs.sig_document_made.connect(runs.open_made_document)
        jobs.sig_partial_result.connect(runs.on_partial_result)
        jobs.sig_preview_ready.connect(runs.on_preview_ready)
        jobs.sig_preview_message.connect(runs.on_preview_message)
        jobs.sig_batch_event.connect(runs.on_batch_event)
        jobs.sig_batch_finished.connect(runs.on_batch_finished)
        jobs.sig_batch_stopped.connect(self.batch_panel.on_stopped)
        self.worker.sig_device_described.connect(self.views.on_device)
        self.progress_panel.sig_cancel_requested.connect(jobs.cancel)

    def _connect_canvas(self) -> None:
        canvas, photos = self.canvas, self.photos
        canvas.sig_files_dropped.connect(photos.open_paths)
        canvas.sig_zoom_changed.connect(lambda zoom: self.status_zoom.setText(f"{zoom:.0%}"))
        canvas.sig_cursor_moved.connect(self.views.on_cursor)
        canvas.sig_view_changed.connect(self.jobs.schedule_preview)
        canvas.sig_stroke_finished.connect(self.tools.layers_edited)
        canvas.sig_region_drawn.connect(self.tools.on_region_drawn)
        self.tabs.sig_added.connect(photos.on_document_added)
        self.tabs.sig_open_failed.connect(photos.on_open_failed)
        self.tabs.sig_current_changed.connect(photos.set_document)
        self.tabs.sig_close_requested.connect(photos.close)
        self.canvas_panel.tabs.tabBarClicked.connect(photos.on_tab_clicked)
        self.canvas_panel.tabs.tabCloseRequested.connect(photos.close_document)
        self.canvas_panel.compare.sig_choice_changed.connect(self.update_actions)
        self.canvas_panel.sig_mask_colour_chosen.connect(
            lambda colour: self.settings.setValue("canvas/mask_colour", colour.name())
        )

    def _connect_panels(self) -> None:
        engines = self.engines
        self.exporter.sig_message.connect(self.notify)
        self.exporter.sig_exported.connect(
            lambda document, step, _path: document.mark_exported(step)
        )
        self.task_inputs.sig_message.connect(self.notify)
        self.task_inputs.sig_region_tool_requested.connect(lambda: self.tools.set_tool(Tool.REGION))
        self.task_inputs.sig_inputs_changed.connect(self.jobs.schedule_preview)
        self.task_inputs.sig_picture_loaded.connect(
            lambda name, path: self.batch_panel.input_files.update({name: path})
        )
        self.task_inputs.sig_style_loaded.connect(
            lambda path: self.batch_panel.input_files.update({STYLE.name: path})
        )
        self.models_panel.sig_engine_chosen.connect(engines.on_engine_chosen)
        self.models_panel.sig_import_requested.connect(engines.choose_model_file)
        self.models_panel.sig_manage_requested.connect(engines.manage_models)
        self.models_panel.sig_model_file_requested.connect(engines.choose_model_file_to_run)
        self.models_panel.sig_models_changed.connect(engines.reload_registry)
        self.inspector.sig_values_changed.connect(self.jobs.schedule_preview)
        self.inspector.sig_run_requested.connect(self.runs.run_current)
        self.history_panel.sig_export_requested.connect(self.photos.export_current)
        self.history_panel.sig_compare_requested.connect(self.views.compare_step)
        self.batch_panel.sig_start_requested.connect(self.runs.start_batch)
        self.batch_panel.sig_cancel_requested.connect(self.jobs.cancel_batch)
        self.welcome.sig_open_requested.connect(self.photos.choose_files)
        self.welcome.sig_sample_requested.connect(self.photos.open_sample)
        self.welcome.sig_import_requested.connect(engines.choose_model_file)
        self.welcome.sig_manage_requested.connect(engines.manage_models)
        self.welcome.sig_models_changed.connect(engines.reload_registry)

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
    # What other parts and tests call on the window

    @property
    def documents(self) -> list[Document]:
        return self.photos.documents

    @property
    def document(self) -> Document | None:
        return self.photos.document

    @property
    def loading(self) -> int:
        """Files still being read."""
        return self.tabs.loading

    @property
    def device_description(self) -> str:
        return self.jobs.device_description

    def open_paths(self, paths_: Sequence[str | Path]) -> None:
        """Open image files; folders go to the Batch panel."""
        self.photos.open_paths(paths_)

    def run_current(self) -> int | None:
        """Queue the current engine on the current image; returns the job id."""
        return self.runs.run_current()

    def cancel_current(self) -> None:
        """Cancel the running job (or the newest queued one)."""
        self.runs.cancel_current()

    # =========================================================================================
    # Feedback

    def notify(self, message: str, error: bool = False) -> None:
        """Show a message in the status bar (red for errors)."""
        self.last_message = message
        bar = self.statusBar()
        bar.setStyleSheet("QStatusBar { color: #f0776f; }" if error else "")
        bar.showMessage(message, 10000 if error else 6000)

    def update_actions(self) -> None:
        """Enable what applies to the open photo, the chosen engine and the running jobs."""
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
        self.act["region"].setEnabled(has_doc and takes_a_region(spec))

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
        if (unexported or running) and not self.photos.confirm_discard(unexported, running):
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
