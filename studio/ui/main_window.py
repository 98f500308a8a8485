"""The studio window: docks, menus, documents, and the jobs that run on them.

The window never does heavy work itself: images are read and converted for display on a
thread pool, and every job, live preview and batch runs on the one `JobWorker` thread through
`studio.engine.jobs.run_job`. The window only reacts to the worker's signals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QEvent, QObject, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QImage,
    QKeySequence,
    QPixmap,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QTabBar,
    QToolBar,
    QToolButton,
    QWidget,
)

from studio.core import paths
from studio.core.errors import BadInputError, EngineUnavailableError, StudioError, UsageError
from studio.core.image import FloatArray, Image
from studio.core.imageio import SUPPORTED_EXTENSIONS, read_image, read_mask, write_image
from studio.core.protocol import EngineSpec, JobInputs, Kind, RunContext
from studio.core.registry import Registry
from studio.engine.batch import (
    BatchPlan,
    BatchSettings,
    BatchSummary,
    Recipe,
    RecipeStep,
    run_batch,
)
from studio.engine.jobs import JobRequest, run_job
from studio.ui.background import Background
from studio.ui.batch_panel import BatchPanel
from studio.ui.canvas import Compare, Tool
from studio.ui.canvas_panel import CanvasPanel
from studio.ui.display import pixels_to_bgra, to_qimage
from studio.ui.document import Document, Step, crop_image, make_step
from studio.ui.export_dialog import ExportDialog, default_suffix
from studio.ui.history_panel import HistoryPanel
from studio.ui.icons import icon, task_title
from studio.ui.inputs import BracketList, StyleWell, image_icon
from studio.ui.inspector import Inspector
from studio.ui.models_dialog import ModelsDialog, ask_model_file
from studio.ui.models_panel import ModelsPanel, availability
from studio.ui.progress_panel import JobRecord, JobState, ProgressPanel
from studio.ui.samples import Sample, bundled_styles, ensure_samples
from studio.ui.settings import recent_paths, remember_path, window_settings
from studio.ui.worker import JobWorker, WorkerJob

PREVIEW_MAX_SIDE = 768
PREVIEW_DELAY_MS = 250
WARM_UP_DELAY_MS = 300
BATCH_MIN_HEIGHT = 360
LAYOUT_VERSION = 1
_OPEN_FILTER = "Images ({});;All files (*)".format(
    " ".join(f"*{suffix}" for suffix in sorted(SUPPORTED_EXTENSIONS))
)


@dataclass
class _Pending:
    """What the window remembers about a job it handed to the worker."""

    kind: str  # "run", "preview" or "batch"
    document: Document | None = None
    label: str = ""
    step_index: int = 0
    rect: QRect = field(default_factory=QRect)
    started: float = field(default_factory=time.monotonic)


def _load_step(path: Path) -> tuple[Path, Step]:
    """Read a file and prepare it for display (runs on the thread pool)."""
    image = read_image(path)
    return path, make_step(f"Open {path.name}", image)


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
        self.device = device
        self.device_description = "detecting…"
        self.background = Background(self)
        self.worker = JobWorker(device=device)
        if describe_device:
            self.sig_first_exposed.connect(
                lambda: QTimer.singleShot(
                    WARM_UP_DELAY_MS, self.worker, self.worker.request_warm_up
                )
            )
        self.documents: list[Document] = []
        self.document: Document | None = None
        self.last_message = ""
        self._pending: dict[int, _Pending] = {}
        self._preview_id: int | None = None
        self._batch_id: int | None = None
        self._loading = 0
        self._styles: list[Path] = []
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.run_preview)

        self._build_panels()
        self.models_panel.context = RunContext(device=device)
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect()
        self._default_state: QByteArray | None = None
        self.worker.start()
        if registry is not None:
            self.set_registry(registry)
        else:
            self.background.call(
                _build_registry, on_done=self.set_registry, on_error=self._registry_failed
            )
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
        self.batch_panel = BatchPanel(self.current_recipe)
        self.history_panel = HistoryPanel()
        self.brackets = BracketList()
        self.style_well = StyleWell()
        self.task_note = QLabel()
        self.task_note.setObjectName("dimText")
        self.task_note.setWordWrap(True)
        for widget in (self.task_note, self.brackets, self.style_well):
            self.inspector.inputs_box.addWidget(widget)
            widget.hide()

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        self.setCorner(Qt.Corner.TopRightCorner, right)
        self.docks = {
            "canvas": self._dock("Canvas", "dockCanvas", self.canvas_panel, left),
            "models": self._dock("Models", "dockModels", self.models_panel, right),
            "inspector": self._dock("Inspector", "dockInspector", self.inspector, right),
            "history": self._dock("History", "dockHistory", self.history_panel, right),
            "progress": self._dock("Progress", "dockProgress", self.progress_panel, bottom),
            "batch": self._dock("Batch", "dockBatch", _scrolling(self.batch_panel), bottom),
        }
        self.splitDockWidget(self.docks["models"], self.docks["inspector"], Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.docks["models"], self.docks["history"])
        self.tabifyDockWidget(self.docks["progress"], self.docks["batch"])
        self.docks["models"].raise_()
        self.docks["progress"].raise_()

    def _settle_default_sizes(self) -> None:
        """Sizes again once the first layout is done (Qt ignores some before it)."""
        self._apply_default_sizes()
        self._default_state = self.saveState(LAYOUT_VERSION)

    def _apply_default_sizes(self) -> None:
        """Most of the window for the photo; the panels get what they need."""
        width, height = self.width(), self.height()
        side = min(440, width // 3)
        self.resizeDocks(
            [self.docks["canvas"], self.docks["inspector"]],
            [width - side, side],
            Qt.Orientation.Horizontal,
        )
        self.resizeDocks(
            [self.docks["models"], self.docks["inspector"]],
            [height // 2, height // 2],
            Qt.Orientation.Vertical,
        )
        self.resizeDocks(
            [self.docks["canvas"], self.docks["progress"]],
            [height - 260, 200],
            Qt.Orientation.Vertical,
        )

    def _action(
        self,
        text: str,
        slot: Callable[..., Any],
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
        icon_name: str | None = None,
        tip: str = "",
        checkable: bool = False,
        on_toggle: bool = True,
    ) -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        tip = tip or text.replace("…", "").replace("&", "")
        if shortcut is not None:
            tip += f" ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        (action.toggled if checkable and on_toggle else action.triggered).connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        key = QKeySequence.StandardKey
        a = self._action
        self.act_open = a("&Open…", self.choose_files, key.Open, "folder-open", "Open images")
        self.act_export = a(
            "&Export…", self.export_current, "Ctrl+E", "export", "Export the step you are viewing"
        )
        self.act_close = a("&Close image", self.close_document, key.Close, "close")
        self.act_quit = a("&Quit", self.close, key.Quit, "power")
        self.act_undo = a("&Undo", self.undo, key.Undo, "undo")
        self.act_redo = a("&Redo", self.redo, key.Redo, "redo")
        self.act_zoom_fit = a(
            "Zoom to &fit", self.canvas.zoom_fit, "Ctrl+0", "fit-to-screen-outline"
        )
        self.act_zoom_100 = a(
            "&100 %", self.canvas.zoom_actual, "Ctrl+1", "numeric-1-box-outline", "Actual pixels"
        )
        self.act_zoom_in = a("Zoom &in", self.canvas.zoom_in, key.ZoomIn, "magnify-plus-outline")
        self.act_zoom_out = a(
            "Zoom &out", self.canvas.zoom_out, key.ZoomOut, "magnify-minus-outline"
        )
        self.act_before = a(
            "Show &before",
            self._set_before,
            "\\",
            "image-filter-black-white",
            "Show the image before the last operation",
            checkable=True,
        )
        self.act_split = a(
            "&Split before/after",
            self._set_split,
            "Y",
            "compare",
            "Before on the left, after on the right; drag the handle",
            checkable=True,
        )
        self.act_compare = a(
            "&A/B compare",
            self._set_compare_ab,
            "Ctrl+Shift+C",
            "view-split-vertical",
            "Two steps side by side, zoomed together",
            checkable=True,
        )
        self.act_run = a(
            "&Run",
            self.run_current,
            "Ctrl+Return",
            "play",
            "Apply the chosen engine to the whole image",
        )
        self.act_cancel = a("&Cancel", self.cancel_current, "Esc", "stop", "Cancel the running job")
        self.act_preview = a(
            "&Live preview",
            self._on_preview_toggled,
            "P",
            "eye-outline",
            "Preview the visible area as you change settings",
            checkable=True,
        )
        self.act_pan = a(
            "&Hand",
            lambda: self.set_tool(Tool.PAN),
            "H",
            "hand-back-right-outline",
            "Pan (or hold Space)",
            checkable=True,
            on_toggle=False,
        )
        self.act_brush = a(
            "&Mask brush",
            lambda: self.set_tool(Tool.BRUSH),
            "B",
            "brush",
            "Paint the mask",
            checkable=True,
            on_toggle=False,
        )
        self.act_eraser = a(
            "&Eraser",
            lambda: self.set_tool(Tool.ERASER),
            "E",
            "eraser",
            "Erase the mask",
            checkable=True,
            on_toggle=False,
        )
        self.act_hint = a(
            "Colour &hint",
            lambda: self.set_tool(Tool.HINT),
            "I",
            "eyedropper-variant",
            "Paint colour hints for colorize",
            checkable=True,
            on_toggle=False,
        )
        self.act_bigger = a("Bigger brush", lambda: self._scale_brush(1.25), "]")
        self.act_smaller = a("Smaller brush", lambda: self._scale_brush(0.8), "[")
        self.act_mask_clear = a(
            "&Clear mask", self._mask_clear, None, "selection-remove", "Clear the mask"
        )
        self.act_mask_invert = a(
            "&Invert mask", self._mask_invert, None, "invert-colors", "Invert the mask"
        )
        self.act_mask_load = a(
            "&Load mask…",
            self.choose_mask,
            None,
            "file-upload-outline",
            "Load a mask image (white = painted)",
        )
        self.act_mask_save = a(
            "&Save mask…", self.save_mask, None, "content-save-outline", "Save the mask as a PNG"
        )
        self.act_mask_show = a(
            "Show &mask",
            self.canvas.set_mask_visible,
            "M",
            "eye",
            "Show or hide the mask",
            checkable=True,
        )
        self.act_mask_show.setChecked(True)
        self.act_hints_clear = a("Clear colour hints", self._hints_clear, None, "palette-outline")
        self.act_import_model = a(
            "&Import model…", self.choose_model_file, None, "file-import-outline"
        )
        self.act_manage_models = a("&Manage models…", self.manage_models, None, "cog-outline")
        self.act_reset_layout = a(
            "&Reset layout",
            self.reset_layout,
            None,
            "view-dashboard-outline",
            "Put every panel back where it started",
        )
        self.act_full_screen = a(
            "&Full screen", self._toggle_full_screen, key.FullScreen, "fullscreen", checkable=True
        )
        self.act_welcome = a(
            "&Welcome",
            self.show_welcome,
            None,
            "home-outline",
            "What Studio does, models and samples",
        )
        self.act_about = a("&About Studio", self.about, None, "information-outline")
        self.act_pan.setChecked(True)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.act_open)
        self.recent_menu = file_menu.addMenu(icon("history"), "Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addAction(self.act_export)
        file_menu.addSeparator()
        file_menu.addAction(self.act_close)
        file_menu.addAction(self.act_quit)
        edit = bar.addMenu("&Edit")
        edit.addActions([self.act_undo, self.act_redo])
        view = bar.addMenu("&View")
        view.addActions([self.act_zoom_fit, self.act_zoom_100, self.act_zoom_in, self.act_zoom_out])
        view.addSeparator()
        view.addActions([self.act_before, self.act_split, self.act_compare, self.act_mask_show])
        view.addSeparator()
        panels = view.addMenu("&Panels")
        for dock in self.docks.values():
            toggle = dock.toggleViewAction()
            panels.addAction(toggle)
            view.addAction(toggle)
        view.addSeparator()
        view.addActions([self.act_reset_layout, self.act_full_screen])
        job = bar.addMenu("&Job")
        job.addActions([self.act_run, self.act_cancel, self.act_preview])
        tools = bar.addMenu("&Tools")
        tools.addActions([self.act_pan, self.act_brush, self.act_eraser, self.act_hint])
        tools.addSeparator()
        tools.addActions([self.act_bigger, self.act_smaller])
        tools.addSeparator()
        tools.addActions(
            [self.act_mask_clear, self.act_mask_invert, self.act_mask_load, self.act_mask_save]
        )
        tools.addAction(self.act_hints_clear)
        models = bar.addMenu("&Models")
        models.addActions([self.act_import_model, self.act_manage_models])
        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.act_welcome, self.act_about])

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("toolbarMain")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        toolbar.addActions([self.act_open, self.act_export])
        toolbar.addSeparator()
        toolbar.addActions([self.act_undo, self.act_redo])
        toolbar.addSeparator()
        toolbar.addActions(
            [self.act_zoom_fit, self.act_zoom_100, self.act_zoom_in, self.act_zoom_out]
        )
        toolbar.addSeparator()
        toolbar.addActions([self.act_before, self.act_split, self.act_compare])
        toolbar.addSeparator()
        toolbar.addActions([self.act_preview, self.act_run, self.act_cancel])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.main_toolbar = toolbar
        options = self.canvas_panel.tool_bar
        options.addActions([self.act_pan, self.act_brush, self.act_eraser, self.act_hint])
        self.canvas_panel.add_tool_widgets()
        options.addActions(
            [
                self.act_mask_clear,
                self.act_mask_invert,
                self.act_mask_load,
                self.act_mask_save,
                self.act_mask_show,
            ]
        )
        self.canvas_panel.set_tool(Tool.PAN)

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
        worker = self.worker
        worker.sig_job_started.connect(self._on_job_started)
        worker.sig_job_progressed.connect(self._on_job_progressed)
        worker.sig_job_previewed.connect(self._on_job_previewed)
        worker.sig_job_event.connect(self._on_job_event)
        worker.sig_job_logged.connect(self.progress_panel.logged)
        worker.sig_job_finished.connect(self._on_job_finished)
        worker.sig_job_failed.connect(self._on_job_failed)
        worker.sig_job_cancelled.connect(self._on_job_cancelled)
        worker.sig_device_described.connect(self._on_device)
        self.progress_panel.sig_cancel_requested.connect(self.worker.cancel)
        canvas = self.canvas
        canvas.sig_files_dropped.connect(self.open_paths)
        canvas.sig_zoom_changed.connect(self._on_zoom)
        canvas.sig_cursor_moved.connect(self._on_cursor)
        canvas.sig_view_changed.connect(self._schedule_preview)
        canvas.sig_stroke_finished.connect(self._on_layers_edited)
        self.canvas_panel.tabs.currentChanged.connect(self._on_tab_changed)
        self.canvas_panel.tabs.tabBarClicked.connect(self._on_tab_clicked)
        self.canvas_panel.tabs.tabCloseRequested.connect(self.close_document)
        self.canvas_panel.compare.sig_choice_changed.connect(self._update_actions)
        self.models_panel.sig_engine_chosen.connect(self._on_engine_chosen)
        self.models_panel.sig_import_requested.connect(self.choose_model_file)
        self.models_panel.sig_manage_requested.connect(self.manage_models)
        self.models_panel.sig_model_file_requested.connect(self.choose_model_file_to_run)
        self.inspector.sig_values_changed.connect(self._schedule_preview)
        self.inspector.sig_run_requested.connect(self.run_current)
        self.history_panel.sig_export_requested.connect(self.export_current)
        self.history_panel.sig_compare_requested.connect(self.compare_step)
        self.batch_panel.sig_start_requested.connect(self.start_batch)
        self.batch_panel.sig_cancel_requested.connect(self._cancel_batch)
        self.brackets.sig_add_requested.connect(self.choose_brackets)
        self.brackets.sig_add_open_requested.connect(self._add_open_images_as_brackets)
        self.brackets.sig_remove_requested.connect(self._remove_bracket)
        self.brackets.sig_exposure_edited.connect(self._on_exposure_edited)
        self.style_well.sig_style_chosen.connect(self.load_style)
        self.style_well.sig_add_requested.connect(self.choose_style)
        self.welcome.sig_open_requested.connect(self.choose_files)
        self.welcome.sig_sample_requested.connect(self.open_sample)
        self.welcome.sig_import_requested.connect(self.choose_model_file)
        self.welcome.sig_manage_requested.connect(self.manage_models)

    # =========================================================================================
    # Layout

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._default_state is None:
            self._apply_default_sizes()
            self._default_state = self.saveState(LAYOUT_VERSION)
            self._restore_layout()
            if not self.settings.contains("window/state"):
                QTimer.singleShot(0, self, self._settle_default_sizes)
            handle = self.windowHandle()
            if handle is not None:
                handle.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        handle = self.windowHandle()
        if watched is handle and event.type() == QEvent.Type.Expose and handle.isExposed():
            handle.removeEventFilter(self)
            self.sig_first_exposed.emit()
        return super().eventFilter(watched, event)

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.sync()

    def reset_layout(self) -> None:
        """Every panel back where it was when Studio first opened."""
        for dock in self.docks.values():
            dock.setFloating(False)
        if self._default_state is not None:
            self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()
        self.docks["models"].raise_()
        self.docks["progress"].raise_()

    def _toggle_full_screen(self, on: bool) -> None:
        self.showFullScreen() if on else self.showNormal()

    # =========================================================================================
    # Engines and models

    def set_registry(self, registry: Registry) -> None:
        self.registry = registry
        self.models_panel.set_registry(registry, self.models_panel.context)
        self.welcome.set_engines(registry, self.models_panel._status)
        self._refresh_installed_models()
        self.sig_registry_ready.emit()

    def _registry_failed(self, error: BaseException) -> None:
        self.notify(f"Could not load the engines: {error}", error=True)

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
            _build_registry, on_done=self.set_registry, on_error=self._registry_failed
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
        self._show_task_inputs(spec)
        self._update_actions()
        self._schedule_preview()

    def _show_task_inputs(self, spec: EngineSpec | None) -> None:
        task = spec.task if spec else ""
        self.brackets.setVisible(bool(spec and spec.multi_input))
        self.style_well.setVisible(bool(spec and spec.needs_style))
        notes = {
            "inpaint": "Paint what to fill with the mask brush (B); E erases, [ and ] resize.",
            "colorize": "Optional: paint colour hints with the hint tool (I).",
        }
        note = notes.get(task, "")
        if spec is not None and spec.needs_mask and task != "inpaint":
            note = notes["inpaint"]
        self.task_note.setText(note)
        self.task_note.setVisible(bool(note))
        if spec is not None and spec.needs_style:
            self._refresh_style_well()
        if spec is not None and spec.needs_mask:
            self.set_tool(Tool.BRUSH)
        elif task == "colorize" and self.canvas.tool in (Tool.BRUSH, Tool.ERASER):
            self.set_tool(Tool.HINT)

    # =========================================================================================
    # Opening and closing photos

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "", _OPEN_FILTER)
        self.open_paths(files)

    def open_paths(self, paths_: Sequence[str | Path]) -> None:
        """Open image files; folders go to the Batch panel."""
        folders = [Path(p) for p in paths_ if Path(p).is_dir()]
        files = [Path(p) for p in paths_ if not Path(p).is_dir()]
        if folders:
            self.batch_panel.add_sources(folders)
            self.show_batch()
            self.notify(f"Added {len(folders)} folder(s) to the batch")
        for path in files:
            self.open_file(path)

    def open_file(self, path: Path, then: Callable[[Document], None] | None = None) -> None:
        """Read `path` off the GUI thread, then show it in a new tab."""
        self._loading += 1
        self.notify(f"Opening {path.name}…")

        def done(result: tuple[Path, Step]) -> None:
            self._loading -= 1
            document = self._add_document(*result)
            if then is not None:
                then(document)

        def failed(error: BaseException) -> None:
            self._loading -= 1
            self.notify(
                str(error)
                if isinstance(error, StudioError)
                else f"Cannot open {path.name}: {error}",
                error=True,
            )

        self.background.call(_load_step, path, on_done=done, on_error=failed)

    @property
    def loading(self) -> int:
        """Files still being read."""
        return self._loading

    def _add_document(self, path: Path, step: Step) -> Document:
        document = Document(path, step, self)
        document.sig_steps_changed.connect(lambda d=document: self._on_steps_changed(d))
        document.sig_brackets_changed.connect(lambda d=document: self._on_brackets_changed(d))
        self.documents.append(document)
        remember_path(self.settings, "recent/files", path)
        tabs = self.canvas_panel.tabs
        index = tabs.addTab(image_icon(step.image, 16), document.name)
        tabs.setTabToolTip(index, str(path))
        close = QToolButton()
        close.setIcon(icon("close"))
        close.setToolTip("Close this image")
        close.setAutoRaise(True)
        close.clicked.connect(
            lambda _=False, d=document: self.close_document(self.documents.index(d))
        )
        tabs.setTabButton(index, QTabBar.ButtonPosition.RightSide, close)
        tabs.setCurrentIndex(index)
        self._set_document(document)
        self.notify(f"Opened {path.name} · {step.size_text}")
        self.sig_document_opened.emit(document)
        return document

    def close_document(self, index: int | bool | None = None) -> None:
        tabs = self.canvas_panel.tabs
        index = (
            tabs.currentIndex() if not isinstance(index, int) or isinstance(index, bool) else index
        )
        if not 0 <= index < len(self.documents):
            return
        document = self.documents.pop(index)
        tabs.removeTab(index)
        for job_id, pending in list(self._pending.items()):
            if pending.document is document:
                self.worker.cancel(job_id)
        if self.document is document:
            self._set_document(self.documents[tabs.currentIndex()] if self.documents else None)
        document.deleteLater()

    def _on_tab_clicked(self, index: int) -> None:
        """Clicking a tab leaves the welcome page (Help › Welcome) for the photo."""
        if 0 <= index < len(self.documents) and not self.act_compare.isChecked():
            self.canvas_panel.show_view()

    def _on_tab_changed(self, index: int) -> None:
        if 0 <= index < len(self.documents) and self.documents[index] is not self.document:
            self._set_document(self.documents[index])

    def _set_document(self, document: Document | None) -> None:
        self.document = document
        self.history_panel.set_document(document)
        self._clear_preview()
        if document is None:
            self.act_compare.setChecked(False)
            self.canvas.set_images(None, None)
            self.canvas.set_layers(None, None)
            self.canvas_panel.show_welcome()
            self.status_image.setText("")
            self.status_zoom.setText("")
        else:
            self._show_step(document)
            if not self.act_compare.isChecked():
                self.canvas_panel.show_view()
            self.brackets.set_brackets(document.brackets)
            if self.style_well.isVisibleTo(self.inspector):
                self._refresh_style_well()
        self._update_actions()

    def _show_step(self, document: Document) -> None:
        self.canvas.set_images(document.before.qimage, document.current.qimage)
        self.canvas.set_layers(document.mask, document.hints)
        self.status_image.setText(document.current.size_text)
        if self.act_compare.isChecked():
            self._fill_compare()

    def _on_steps_changed(self, document: Document) -> None:
        if document is self.document:
            self._clear_preview()
            self._show_step(document)
            self._update_actions()
            self._schedule_preview()

    def _on_brackets_changed(self, document: Document) -> None:
        if document is self.document:
            self.brackets.set_brackets(document.brackets)
            self._schedule_preview()

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
                self._load_brackets(document, list(sample.images[1:]))
            if sample.style is not None:
                self.load_style(sample.style)

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
    # HDR brackets and style images

    def choose_brackets(self) -> None:
        if self.document is None:
            return
        files, _ = QFileDialog.getOpenFileNames(self, "Add exposure brackets", "", _OPEN_FILTER)
        if files:
            self._load_brackets(self.document, [Path(f) for f in files])

    def _load_brackets(self, document: Document, files: list[Path]) -> None:
        def read_all() -> list[Image]:
            return [read_image(path) for path in files]

        self.background.call(
            read_all,
            on_done=lambda images: document.set_brackets(document.brackets + images),
            on_error=lambda err: self.notify(str(err), error=True),
        )

    def _add_open_images_as_brackets(self) -> None:
        if self.document is None:
            return
        others = [d.current.image for d in self.documents if d is not self.document]
        self.document.set_brackets(self.document.brackets + others)

    def _remove_bracket(self, row: int) -> None:
        if self.document is not None and 0 <= row < len(self.document.brackets):
            brackets = list(self.document.brackets)
            del brackets[row]
            self.document.set_brackets(brackets)

    def _on_exposure_edited(self, row: int, seconds: float | None) -> None:
        if self.document is not None:
            self.document.set_exposure_time(row, seconds)

    def choose_style(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a style image", "", _OPEN_FILTER)
        if path:
            self.load_style(Path(path))

    def load_style(self, path: Path) -> None:
        document = self.document

        def done(image: Image) -> None:
            if document is not None:
                document.style = image
            if path not in self._styles:
                remember_path(self.settings, "recent/styles", path)
            self.batch_panel.style_file = path
            self._refresh_style_well()
            self._schedule_preview()

        self.background.call(
            read_image, path, on_done=done, on_error=lambda e: self.notify(str(e), error=True)
        )

    def _refresh_style_well(self) -> None:
        recent_styles = recent_paths(self.settings, "recent/styles")

        def entries() -> list[tuple[Path, QImage]]:
            self._styles = bundled_styles(paths.cache_dir() / "samples" / "styles")
            recent = [p for p in recent_styles if p not in self._styles]
            return [
                (path, QImage(str(path)).scaled(144, 144, Qt.AspectRatioMode.KeepAspectRatio))
                for path in [*self._styles, *recent]
            ]

        def show(found: list[tuple[Path, QImage]]) -> None:
            style = self.document.style if self.document is not None else None
            chosen = style.meta.source_path if style is not None else None
            self.style_well.set_styles([(p, _icon_of(q)) for p, q in found], chosen)

        self.background.call(
            entries, on_done=show, on_error=lambda e: self.notify(str(e), error=True)
        )

    # =========================================================================================
    # Masks and tools

    def set_tool(self, tool: Tool) -> None:
        self.canvas_panel.set_tool(tool)
        for action, kind in (
            (self.act_pan, Tool.PAN),
            (self.act_brush, Tool.BRUSH),
            (self.act_eraser, Tool.ERASER),
            (self.act_hint, Tool.HINT),
        ):
            action.setChecked(tool is kind)
        if tool in (Tool.BRUSH, Tool.ERASER) and not self.act_mask_show.isChecked():
            self.act_mask_show.setChecked(True)

    def _scale_brush(self, factor: float) -> None:
        self.canvas_panel.set_brush_size(max(self.canvas.brush_size * factor, 1.0))

    def _mask_clear(self) -> None:
        if self.document is not None:
            self.document.mask.clear()
            self._on_layers_edited()

    def _mask_invert(self) -> None:
        if self.document is not None:
            self.document.mask.invert()
            self._on_layers_edited()

    def _hints_clear(self) -> None:
        if self.document is not None:
            self.document.hints.clear()
            self._on_layers_edited()

    def choose_mask(self) -> None:
        if self.document is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Load a mask", "", _OPEN_FILTER)
        if path:
            self.load_mask(Path(path))

    def load_mask(self, path: Path) -> None:
        document = self.document
        if document is None:
            return
        size = (document.mask.height, document.mask.width)

        def done(mask: FloatArray) -> None:
            document.mask.set_alpha(mask, f"Load {path.name}")
            self._on_layers_edited()

        self.background.call(
            read_mask, path, size, on_done=done, on_error=lambda e: self.notify(str(e), error=True)
        )

    def save_mask(self) -> None:
        if self.document is None:
            return
        suggested = self._suggest_path(self.document, "mask", ".png")
        path, _ = QFileDialog.getSaveFileName(self, "Save the mask", str(suggested), "PNG (*.png)")
        if path:
            self.write_mask(Path(path))

    def write_mask(self, path: Path) -> None:
        """Write the mask as a grey PNG (white = painted), off the GUI thread."""
        assert self.document is not None
        mask = Image(self.document.mask.alpha()[..., None])
        self.background.call(
            lambda: write_image(mask, path, bit_depth=8),
            on_done=lambda written: self.notify(f"Mask saved to {written}"),
            on_error=lambda e: self.notify(str(e), error=True),
        )

    def _on_layers_edited(self) -> None:
        self._update_actions()
        self._schedule_preview()

    # =========================================================================================
    # Undo, compare, zoom feedback

    def _paint_stack_active(self) -> Any:
        if self.document is None:
            return None
        tool = self.canvas.tool
        if tool in (Tool.BRUSH, Tool.ERASER):
            return self.document.mask.undo_stack
        if tool is Tool.HINT:
            return self.document.hints.undo_stack
        return None

    def undo(self) -> None:
        """Undo the last stroke while painting, else the last operation."""
        stack = self._paint_stack_active()
        if stack is not None and stack.canUndo():
            stack.undo()
            self._on_layers_edited()
        elif self.document is not None:
            self.document.undo()

    def redo(self) -> None:
        stack = self._paint_stack_active()
        if stack is not None and stack.canRedo():
            stack.redo()
            self._on_layers_edited()
        elif self.document is not None:
            self.document.redo()

    def _set_before(self, on: bool) -> None:
        if on:
            self.act_split.setChecked(False)
        self.canvas.set_compare(Compare.BEFORE if on else self._after_mode())

    def _set_split(self, on: bool) -> None:
        if on:
            self.act_before.setChecked(False)
            visible = self.canvas.visible_image_rect()
            width = self.canvas.image_item.boundingRect().width()
            if width and not visible.isEmpty():
                self.canvas.set_split((visible.center().x() + 0.5) / width)
        self.canvas.set_compare(Compare.SPLIT if on else Compare.AFTER)

    def _after_mode(self) -> Compare:
        return Compare.SPLIT if self.act_split.isChecked() else Compare.AFTER

    def _set_compare_ab(self, on: bool) -> None:
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
        self.act_compare.setChecked(True)

    def _on_zoom(self, zoom: float) -> None:
        self.status_zoom.setText(f"{zoom * 100:.0f} %")

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
        self.device_description = description
        self.status_device.setText(f"Device: {description}")

    # =========================================================================================
    # Running jobs

    def _spec_and_document(self) -> tuple[EngineSpec, Document]:
        spec = self.models_panel.current_engine()
        if self.document is None:
            raise UsageError("Open an image first (File > Open, or drop one on the window)")
        if spec is None:
            raise UsageError("Choose a task and an engine in the Models panel")
        status = availability(spec, self.models_panel.context)
        if not status.ok:
            raise EngineUnavailableError(f"{spec.name} is unavailable: {status.reason}")
        if not self.inspector.is_valid():
            raise BadInputError("Fix the highlighted parameters in the Inspector first")
        return spec, self.document

    def build_request(self, rect: QRect | None = None) -> tuple[JobRequest, EngineSpec, Document]:
        """The job for the current engine and settings, on the whole image or on `rect`."""
        spec, document = self._spec_and_document()

        def crop(array: FloatArray) -> FloatArray:
            if rect is None:
                return array
            return np.ascontiguousarray(
                array[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]
            )

        def crop_img(image: Image) -> Image:
            return image if rect is None else crop_image(image, rect)

        images: tuple[Image, ...] = (crop_img(document.current.image),)
        if spec.multi_input:
            if len(document.brackets) < 2:
                raise UsageError("Add at least two exposure brackets in the Inspector")
            images = tuple(crop_img(image) for image in document.brackets)
        mask = hints = None
        if spec.needs_mask:
            if document.mask.is_empty():
                raise UsageError("Paint the area to fill with the mask brush (B) first")
            mask = crop(document.mask.alpha())
        if spec.task == "colorize" and not document.hints.is_empty():
            hints = crop(document.hints.rgba())
        if spec.needs_style and document.style is None:
            raise UsageError("Choose a style image in the Inspector first")
        region = None
        if self.inspector.limit_to_mask.isChecked() and not spec.needs_mask:
            if document.mask.is_empty():
                raise UsageError("Paint a mask first, or untick 'Only inside the painted mask'")
            region = crop(document.mask.alpha())
        inputs = JobInputs(images, mask=mask, hints=hints, style=document.style)
        request = JobRequest(
            task=spec.task,
            inputs=inputs,
            engine=spec.id,
            params=self.inspector.values(),
            opacity=self.inspector.opacity(),
            region=region,
        )
        return request, spec, document

    def _device_for(self, spec: EngineSpec) -> str:
        """Neural and GPU-capable engines run on the worker's device; the others on the CPU."""
        uses_device = spec.kind is Kind.NEURAL or spec.gpu_recommended
        return self.device_description if uses_device else "CPU"

    def run_current(self) -> int | None:
        """Queue the current engine on the current image; returns the job id."""
        try:
            request, spec, document = self.build_request()
        except StudioError as err:
            self.notify(str(err), error=True)
            return None
        registry = self.registry
        label = f"{task_title(spec.task)} · {spec.name}"
        hdr = document.current.image.meta.is_float
        params = self.inspector.params_json()
        step_details = {"task": spec.task, "engine": spec.id, "params": params}
        job = WorkerJob(
            start=lambda ctx: run_job(registry, request, ctx),
            model_path=self.models_panel.context.model_path,
            finish=lambda image: make_step(label, image, **step_details),
            preview=lambda progress: pixels_to_bgra(progress.preview, hdr),  # type: ignore[arg-type]
        )
        self._pending[job.id] = _Pending("run", document, label, document.index)
        self.progress_panel.add(
            JobRecord(job.id, spec.task, spec.name, document.name, self._device_for(spec))
        )
        self._cancel_preview()
        self.worker.submit(job)
        self.docks["progress"].raise_()
        self.notify(f"Queued {label}")
        self._update_actions()
        return job.id

    def cancel_current(self) -> None:
        """Cancel the running job (or the newest queued one)."""
        running = [
            job_id
            for job_id in self.progress_panel.running_ids()
            if self.progress_panel.records[job_id].state is JobState.RUNNING
        ]
        targets = running or self.progress_panel.running_ids()[-1:]
        for job_id in targets:
            self.worker.cancel(job_id)
        if targets:
            self.notify("Cancelling…")

    # -- live preview -------------------------------------------------------------------------

    def _on_preview_toggled(self, on: bool) -> None:
        if on:
            self.run_preview()
        else:
            self._cancel_preview()
            self._clear_preview()

    def _schedule_preview(self) -> None:
        if self.act_preview.isChecked():
            self._preview_timer.start()

    def preview_rect(self) -> QRect:
        """The visible part of the image, at most PREVIEW_MAX_SIDE pixels a side (centred)."""
        visible = self.canvas.visible_image_rect()
        width = min(visible.width(), PREVIEW_MAX_SIDE)
        height = min(visible.height(), PREVIEW_MAX_SIDE)
        centre = visible.center()
        rect = QRect(centre.x() - width // 2, centre.y() - height // 2, width, height)
        return rect.intersected(visible)

    def run_preview(self) -> int | None:
        """Run the current settings on the visible area, through the same `run_job`."""
        if not self.act_preview.isChecked() or self.document is None:
            return None
        rect = self.preview_rect()
        if rect.isEmpty():
            return None
        try:
            request, _, document = self.build_request(rect)
        except StudioError as err:
            self.notify(f"Preview: {err}", error=True)
            return None
        registry = self.registry
        hdr = document.current.image.meta.is_float
        job = WorkerJob(
            start=lambda ctx: run_job(registry, request, ctx),
            model_path=self.models_panel.context.model_path,
            finish=lambda image: pixels_to_bgra(image.pixels, hdr or image.meta.is_float),
            is_preview=True,
        )
        self._preview_id = job.id
        self._pending[job.id] = _Pending("preview", document, "Preview", document.index, rect)
        self.worker.submit(job)
        return job.id

    def _cancel_preview(self) -> None:
        if self._preview_id is not None:
            self.worker.cancel(self._preview_id)
            self._preview_id = None

    def _clear_preview(self) -> None:
        self.canvas.set_preview(None)

    # -- batch ----------------------------------------------------------------------------------

    def current_recipe(self) -> Recipe:
        """One step: the current task, engine, parameters and opacity."""
        spec = self.models_panel.current_engine()
        if spec is None:
            raise UsageError("Choose a task and an engine in the Models panel")
        if not self.inspector.is_valid():
            raise BadInputError("Fix the highlighted parameters in the Inspector first")
        step = RecipeStep(
            task=spec.task,
            engine=spec.id,
            params=self.inspector.params_json(),
            opacity=self.inspector.opacity(),
        )
        return Recipe(steps=[step])

    def show_batch(self) -> None:
        """Bring the Batch panel forward with room for its list."""
        dock = self.docks["batch"]
        dock.show()
        dock.raise_()
        if not dock.isFloating() and dock.height() < BATCH_MIN_HEIGHT:
            self.resizeDocks([dock], [BATCH_MIN_HEIGHT], Qt.Orientation.Vertical)

    def start_batch(self, plan: BatchPlan, settings: BatchSettings) -> int:
        registry = self.registry
        job = WorkerJob(
            start=lambda ctx: run_batch(registry, plan, settings, ctx),
            model_path=self.models_panel.context.model_path,
        )
        self._batch_id = job.id
        self._pending[job.id] = _Pending("batch", label=settings.recipe.label)
        first = settings.recipe.steps[0]
        self.progress_panel.add(
            JobRecord(
                job.id,
                first.task,
                f"Batch: {settings.recipe.label}",
                f"{len(plan.items)} image(s)",
                "CPU",
            )
        )
        self.worker.submit(job)
        return job.id

    def _cancel_batch(self) -> None:
        if self._batch_id is not None:
            self.worker.cancel(self._batch_id)

    # -- worker signals ---------------------------------------------------------------------------

    def _on_job_started(self, job_id: int) -> None:
        pending = self._pending.get(job_id)
        if pending is not None and pending.kind != "preview":
            self.progress_panel.started(job_id)
            self.notify(f"Running {pending.label}…")
        self._update_actions()

    def _on_job_progressed(self, job_id: int, progress: Any) -> None:
        pending = self._pending.get(job_id)
        if pending is None:
            return
        if pending.kind == "run":
            self.progress_panel.progressed(job_id, progress.fraction, progress.message)
        elif pending.kind == "preview" and job_id == self._preview_id:
            self.statusBar().showMessage(f"Preview: {progress.message}", 2000)

    def _on_job_previewed(self, job_id: int, bgra: np.ndarray) -> None:
        """A running job's partial result, shown over the image while it works."""
        pending = self._pending.get(job_id)
        document = pending.document if pending is not None else None
        if pending is None or document is None or document is not self.document:
            return
        image = document.current.image
        same_size = bgra.shape[:2] == (image.height, image.width)
        if document.index == pending.step_index and same_size:
            self.canvas.set_preview(to_qimage(bgra), QRect(0, 0, image.width, image.height))

    def _on_job_event(self, job_id: int, event: Any) -> None:
        pending = self._pending.get(job_id)
        if pending is None or pending.kind != "batch":
            return
        self.batch_panel.on_event(event)
        total = len(self.batch_panel.statuses) or 1
        finished = sum(
            status.value in ("done", "failed", "skipped")
            for status in self.batch_panel.statuses.values()
        )
        message = getattr(event, "reason", "") or type(event).__name__.removeprefix("Item").lower()
        label = getattr(getattr(event, "item", None), "label", "")
        self.progress_panel.progressed(
            job_id, finished / total, f"{label}: {message}" if label else message
        )

    def _on_job_finished(self, job_id: int, payload: Any) -> None:
        pending = self._pending.pop(job_id, None)
        if pending is None:
            return
        if pending.kind == "run":
            self.progress_panel.finished(job_id, JobState.DONE)
            document = pending.document
            if document is not None and document in self.documents:
                document.apply(payload)
                self.notify(f"{pending.label}: done in {time.monotonic() - pending.started:.1f} s")
        elif pending.kind == "preview":
            if job_id == self._preview_id:
                self._preview_id = None
                document = pending.document
                if (
                    document is self.document
                    and document is not None
                    and document.index == pending.step_index
                ):
                    self.canvas.set_preview(to_qimage(payload), pending.rect)
                    self.statusBar().showMessage("Preview of the visible area", 3000)
        elif pending.kind == "batch":
            self._batch_id = None
            summary: BatchSummary = payload
            self.batch_panel.on_finished(summary)
            self.progress_panel.finished(job_id, JobState.DONE)
            self.notify(self.batch_panel.status.text())
        self._update_actions()
        self.sig_job_ended.emit(job_id, "done")

    def _on_job_failed(self, job_id: int, message: str, details: str) -> None:
        pending = self._pending.pop(job_id, None)
        if pending is None:
            return
        if pending.kind == "preview":
            if job_id == self._preview_id:
                self._preview_id = None
                self.notify(f"Preview failed: {message}", error=True)
        else:
            self.progress_panel.finished(job_id, JobState.FAILED, message, details)
            self.docks["progress"].show()
            self.docks["progress"].raise_()
            self.notify(f"{pending.label} failed: {message}", error=True)
            if pending.kind == "batch":
                self._batch_id = None
                self.batch_panel.on_stopped(message)
        self._update_actions()
        self.sig_job_ended.emit(job_id, "failed")

    def _on_job_cancelled(self, job_id: int) -> None:
        pending = self._pending.pop(job_id, None)
        if pending is None:
            return
        if pending.kind != "preview":
            self.progress_panel.finished(job_id, JobState.CANCELLED)
            self.notify(f"{pending.label}: cancelled")
        if pending.kind == "batch":
            self._batch_id = None
            self.batch_panel.on_stopped("Cancelled")
        if job_id == self._preview_id:
            self._preview_id = None
        self._update_actions()
        self.sig_job_ended.emit(job_id, "cancelled")

    # =========================================================================================
    # Export

    def _suggest_path(self, document: Document, tag: str, suffix: str) -> Path:
        base = document.path if document.path is not None else Path.home() / document.name
        return base.with_name(f"{base.stem}_{tag}{suffix}")

    def export_current(self) -> None:
        document = self.document
        if document is None:
            return
        step = document.current
        tag = step.task or "copy"
        dialog = ExportDialog(
            step.image, self._suggest_path(document, tag, default_suffix(step.image)), self
        )
        if dialog.exec() != ExportDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()
        self.export_step(step, choice.path, choice.bit_depth, choice.quality)

    def export_step(self, step: Step, path: Path, bit_depth: int | None, quality: int = 95) -> None:
        """Write `step` off the GUI thread; originals are never overwritten."""
        inputs = self.document.source_paths() if self.document is not None else ()
        self.notify(f"Exporting {path.name}…")
        self.background.call(
            lambda: write_image(
                step.image, path, bit_depth=bit_depth, quality=quality, inputs=inputs
            ),
            on_done=lambda written: self.notify(f"Exported {written}"),
            on_error=lambda err: self._export_failed(err),
        )

    def _export_failed(self, error: BaseException) -> None:
        self.notify(f"Export failed: {error}", error=True)
        box = QMessageBox(QMessageBox.Icon.Warning, "Export failed", str(error), parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

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
        for action in (
            self.act_export,
            self.act_close,
            self.act_zoom_fit,
            self.act_zoom_100,
            self.act_zoom_in,
            self.act_zoom_out,
            self.act_before,
            self.act_split,
            self.act_compare,
            self.act_mask_clear,
            self.act_mask_invert,
            self.act_mask_load,
            self.act_mask_save,
            self.act_hints_clear,
        ):
            action.setEnabled(has_doc)
        stack = self._paint_stack_active()
        can_undo = (stack is not None and stack.canUndo()) or (
            document is not None and document.can_undo()
        )
        can_redo = (stack is not None and stack.canRedo()) or (
            document is not None and document.can_redo()
        )
        self.act_undo.setEnabled(bool(can_undo))
        self.act_redo.setEnabled(bool(can_redo))
        self.act_cancel.setEnabled(bool(self.progress_panel.running_ids()))
        spec = self.models_panel.current_engine()
        reason = "" if has_doc else "Open an image first"
        self.inspector.set_run_allowed(has_doc and spec is not None, reason)
        self.act_run.setEnabled(has_doc and spec is not None)

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
        if self.progress_panel.running_ids() and not self._confirm_quit():
            event.ignore()
            return
        self.save_layout()
        self.shutdown()
        super().closeEvent(event)

    def _confirm_quit(self) -> bool:
        answer = QMessageBox.question(
            self,
            "Jobs are running",
            "Cancel the running jobs and close Studio? Nothing half-written is left behind.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.notify("Stopping the running job…")
            return True
        return False

    def shutdown(self) -> None:
        """Stop the worker and the thread pool (idempotent)."""
        self._preview_timer.stop()
        if self.worker.isRunning():
            self.worker.shutdown()
        self.background.shutdown()


def _scrolling(panel: QWidget) -> QScrollArea:
    """`panel` in a scroll area, so its dock can be made shorter than the panel's minimum."""
    scroll = QScrollArea()
    scroll.setObjectName("panelScroll")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(panel)
    return scroll


def _build_registry() -> Registry:
    from studio.engine.registry import build_registry

    return build_registry()


def _icon_of(image: QImage) -> QIcon:
    return QIcon(QPixmap.fromImage(image))
