"""The Batch panel: drop files and folders, choose outputs, run the current settings on all.

Planning and running use `studio.engine.batch` (the same code as `studio batch`): outputs
never replace an input, one bad file fails alone, cancel leaves no half-written file, and a
manifest in the output folder lets Resume skip what is already done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.imageio import OUTPUT_FORMATS
from studio.core.registry import Registry
from studio.engine.batch import (
    DEFAULT_TEMPLATE,
    BatchEvent,
    BatchPlan,
    BatchSettings,
    BatchSummary,
    ItemFailed,
    ItemFinished,
    ItemProgress,
    ItemSkipped,
    ItemStarted,
    ItemStatus,
    Recipe,
    load_recipe,
    merges_images,
    plan_batch,
)
from studio.ui.icons import icon
from studio.ui.progress_panel import format_seconds
from studio.ui.settings import window_settings

FORMATS = [
    ("Same format", None),
    *((label, suffix.lstrip(".")) for suffix, (label, _) in OUTPUT_FORMATS.items()),
]
BIT_DEPTHS = [("Same bit depth", None), ("8-bit", 8), ("16-bit", 16), ("32-bit float", 32)]
_STATUS_ICONS = {
    ItemStatus.QUEUED: "clock-outline",
    ItemStatus.RUNNING: "progress-clock",
    ItemStatus.DONE: "check-circle-outline",
    ItemStatus.FAILED: "alert-circle-outline",
    ItemStatus.SKIPPED: "skip-next-circle-outline",
}

RecipeProvider = Callable[[], Recipe]
RegistryProvider = Callable[[], Registry]


class BatchPanel(QWidget):
    """Sources, output options, the item list with statuses, and Start/Cancel/Retry/Resume."""

    sig_start_requested = Signal(object, object)
    """Run a batch: (BatchPlan, BatchSettings)."""
    sig_cancel_requested = Signal()
    """Cancel the running batch."""

    def __init__(
        self,
        recipe_provider: RecipeProvider,
        registry_provider: RegistryProvider,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._recipe_provider = recipe_provider
        self._registry_provider = registry_provider
        self.sources: list[Path] = []
        self.plan: BatchPlan | None = None
        self.statuses: dict[int, ItemStatus] = {}
        self.reasons: dict[int, str] = {}
        self.summary: BatchSummary | None = None
        self.recipe_file: Path | None = None
        self.running = False
        self.input_files: dict[str, Path] = {}
        """The inputs besides the photos (style, reference...) by kind name."""
        self._started = 0.0
        self._item_fraction = 0.0
        self._running_rows: list[int] = []
        self._saving: set[int] = set()
        self.nodes: dict[int, str] = {}
        """The cluster node that did each finished item."""

        self.items = QTreeWidget()
        self.items.setColumnCount(3)
        self.items.setHeaderLabels(["Input", "Status", "Output / reason"])
        self.items.setRootIsDecorated(False)
        self.items.setAlternatingRowColors(True)
        header = self.items.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.hint = QLabel("Drop images or folders here, or use Add files… / Add folder…")
        self.hint.setObjectName("dimText")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)

        add_files = QToolButton()
        add_files.setIcon(icon("image-plus"))
        add_files.setToolTip("Add files…")
        add_files.clicked.connect(self._choose_files)
        add_folder = QToolButton()
        add_folder.setIcon(icon("folder-plus-outline"))
        add_folder.setToolTip("Add a folder…")
        add_folder.clicked.connect(self._choose_folder)
        clear = QToolButton()
        clear.setIcon(icon("playlist-remove"))
        clear.setToolTip("Remove all sources")
        clear.clicked.connect(self.clear_sources)
        self.recursive = QCheckBox("Include subfolders")
        self.recursive.toggled.connect(self.replan)

        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("Output folder")
        self.out_dir.editingFinished.connect(self.replan)
        browse_out = QToolButton()
        browse_out.setIcon(icon("folder-open-outline"))
        browse_out.clicked.connect(self._choose_out_dir)
        self.template = QLineEdit(DEFAULT_TEMPLATE)
        self.template.setToolTip("Output name: {stem} (input name), {task}, {engine}")
        self.template.editingFinished.connect(self.replan)
        self.format_box = QComboBox()
        for label, value in FORMATS:
            self.format_box.addItem(label, value)
        self.format_box.currentIndexChanged.connect(self.replan)
        self.bit_depth = QComboBox()
        for depth_label, depth in BIT_DEPTHS:
            self.bit_depth.addItem(depth_label, depth)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(95)
        self.quality.setToolTip("JPEG and WebP quality (100 = lossless WebP)")
        self.use_cluster = QCheckBox("Ray cluster")
        self.use_cluster.setToolTip("Run the items on a Ray cluster instead of this computer")
        self.cluster_address = QLineEdit()
        self.cluster_address.setPlaceholderText("host:6379, ray://host:10001 or local")
        self.cluster_address.setToolTip(
            "The cluster's address; 'local' starts Ray on this computer alone"
        )
        self.ship = QCheckBox("Send files")
        self.ship.setToolTip(
            "The cluster's computers do not see these folders: send them each photo and "
            "bring the results back here"
        )
        self._load_cluster_settings()
        for box in (self.use_cluster, self.ship):
            box.toggled.connect(self._cluster_changed)
        self.cluster_address.editingFinished.connect(self._cluster_changed)
        self.recipe_label = QLabel("Current task, engine and parameters")
        self.recipe_label.setObjectName("dimText")
        choose_recipe = QToolButton()
        choose_recipe.setIcon(icon("file-document-outline"))
        choose_recipe.setToolTip("Use a saved recipe (JSON or TOML) instead")
        choose_recipe.clicked.connect(self._choose_recipe)
        forget_recipe = QToolButton()
        forget_recipe.setIcon(icon("close"))
        forget_recipe.setToolTip("Back to the current settings")
        forget_recipe.clicked.connect(lambda: self.set_recipe_file(None))

        self.overall = QProgressBar()
        self.overall.setRange(0, 1000)
        self.overall.setTextVisible(False)
        self.overall.setFixedHeight(8)
        self.status = QLabel()
        self.status.setObjectName("dimText")
        self.start_button = QPushButton(icon("play"), "Start")
        self.start_button.setObjectName("primaryButton")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.clicked.connect(self.sig_cancel_requested)
        self.retry_button = QPushButton(icon("reload"), "Retry failed")
        self.retry_button.clicked.connect(self.retry_failed)
        self.resume_button = QPushButton(icon("play-pause"), "Resume")
        self.resume_button.setToolTip("Run again, skipping items already done in this folder")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))

        sources_bar = QHBoxLayout()
        sources_bar.addWidget(add_files)
        sources_bar.addWidget(add_folder)
        sources_bar.addWidget(clear)
        sources_bar.addWidget(self.recursive)
        sources_bar.addStretch(1)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(browse_out)
        recipe_row = QHBoxLayout()
        recipe_row.addWidget(self.recipe_label, 1)
        recipe_row.addWidget(choose_recipe)
        recipe_row.addWidget(forget_recipe)
        format_row = QHBoxLayout()
        format_row.addWidget(self.format_box, 1)
        format_row.addWidget(self.bit_depth, 1)
        options = QFormLayout()
        options.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        options.addRow("Recipe", recipe_row)
        options.addRow("Output folder", out_row)
        options.addRow("Name", self.template)
        options.addRow("Format", format_row)
        options.addRow("JPEG quality", self.quality)
        cluster_row = QHBoxLayout()
        cluster_row.addWidget(self.use_cluster)
        cluster_row.addWidget(self.cluster_address, 1)
        cluster_row.addWidget(self.ship)
        options.addRow("Run on", cluster_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.resume_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.start_button)
        sources = QVBoxLayout()
        sources.addLayout(sources_bar)
        sources.addWidget(self.hint)
        sources.addWidget(self.items, 1)
        settings = QVBoxLayout()
        settings.addLayout(options)
        settings.addStretch(1)
        settings.addWidget(self.status)
        settings.addLayout(buttons)
        columns = QHBoxLayout()
        columns.addLayout(sources, 3)
        columns.addLayout(settings, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(columns, 1)
        layout.addWidget(self.overall)
        self._update_buttons()

    # -- sources ----------------------------------------------------------------------------

    def add_sources(self, paths: list[Path]) -> None:
        for path in paths:
            if path not in self.sources:
                self.sources.append(path)
        if not self.out_dir.text() and self.sources:
            first = self.sources[0]
            base = first if first.is_dir() else first.parent
            self.out_dir.setText(str(base.parent / f"{base.name}-studio"))
        self.replan()

    def clear_sources(self) -> None:
        self.sources.clear()
        self.replan()

    def set_recipe_file(self, path: Path | None) -> None:
        self.recipe_file = path
        self.recipe_label.setText(
            path.name if path is not None else "Current task, engine and parameters"
        )
        self.replan()

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images to the batch")
        self.add_sources([Path(f) for f in files])

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the batch")
        if folder:
            self.add_sources([Path(folder)])

    def _choose_out_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)
            self.replan()

    def _choose_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Use a recipe", "", "Recipes (*.json *.toml);;All files (*)"
        )
        if path:
            self.set_recipe_file(Path(path))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_sources(paths)

    # -- planning ---------------------------------------------------------------------------

    def recipe(self) -> Recipe:
        return load_recipe(self.recipe_file) if self.recipe_file else self._recipe_provider()

    def replan(self) -> None:
        """Plan the outputs for the sources and show them; problems go to the status line."""
        if self.running:
            return
        self.plan, self.summary = None, None
        self.statuses.clear()
        self.reasons.clear()
        self.items.clear()
        self.hint.setVisible(not self.sources)
        if self.sources and self.out_dir.text().strip():
            try:
                recipe = self.recipe()
                engine = recipe.steps[0].engine or ""
                self.plan = plan_batch(
                    self.sources,
                    Path(self.out_dir.text().strip()).expanduser(),
                    task=recipe.label,
                    engine=engine,
                    template=self.template.text().strip() or DEFAULT_TEMPLATE,
                    fmt=self.format_box.currentData(),
                    recursive=self.recursive.isChecked(),
                    group_by_folder=merges_images(self._registry_provider(), recipe),
                )
            except StudioError as err:
                self._say(str(err), error=True)
            else:
                for index, item in enumerate(self.plan.items):
                    self.statuses[index] = ItemStatus.QUEUED
                    row = QTreeWidgetItem([item.label, "", item.output.name])
                    row.setToolTip(0, "\n".join(str(p) for p in item.inputs))
                    row.setToolTip(2, str(item.output))
                    self.items.addTopLevelItem(row)
                    self._show_status(index)
                self._say(f"{len(self.plan.items)} image(s) to process")
        self.overall.setValue(0)
        self._update_buttons()

    # -- running ----------------------------------------------------------------------------

    def settings(self, resume: bool) -> BatchSettings:
        return BatchSettings(
            recipe=self.recipe(),
            extras=dict(self.input_files),
            bit_depth=self.bit_depth.currentData(),
            quality=self.quality.value(),
            resume=resume,
            cluster=self.cluster(),
            ship=self.ship.isChecked(),
        )

    def cluster(self) -> str | None:
        """The cluster address to run on, or None for this computer."""
        address = self.cluster_address.text().strip()
        return address if self.use_cluster.isChecked() and address else None

    def _load_cluster_settings(self) -> None:
        stored = window_settings()
        self.cluster_address.setText(str(stored.value("batch/cluster", "") or ""))
        self.use_cluster.setChecked(stored.value("batch/use_cluster", False) in (True, "true"))
        self.ship.setChecked(stored.value("batch/ship", False) in (True, "true"))
        self._cluster_changed()

    def _cluster_changed(self) -> None:
        on = self.use_cluster.isChecked()
        self.cluster_address.setEnabled(on)
        self.ship.setEnabled(on)
        stored = window_settings()
        stored.setValue("batch/cluster", self.cluster_address.text().strip())
        stored.setValue("batch/use_cluster", on)
        stored.setValue("batch/ship", self.ship.isChecked())

    def start(self, resume: bool = False, plan: BatchPlan | None = None) -> None:
        if plan is None:
            self.replan()
            plan = self.plan
        if plan is None or not plan.items or self.running:
            return
        try:
            settings = self.settings(resume)
        except StudioError as err:
            self._say(str(err), error=True)
            return
        self.running = True
        self._started = time.monotonic()
        self._item_fraction = 0.0
        self._update_buttons()
        self._say("Starting…")
        self.sig_start_requested.emit(plan, settings)

    def retry_failed(self) -> None:
        """Run the failed items again (the others keep their status)."""
        if self.plan is None or self.running:
            return
        indices = [i for i, status in self.statuses.items() if status is ItemStatus.FAILED]
        if not indices:
            return
        for index in indices:
            self.statuses[index] = ItemStatus.QUEUED
            self.reasons.pop(index, None)
            self._show_status(index)
        self._running_rows = indices
        self.start(plan=self.plan.subset(self.plan.items[i] for i in indices))

    def _row(self, index: int) -> int:
        """The list row of an event's item (its index in the plan that runs)."""
        return self._running_rows[index] if self._running_rows else index

    def on_event(self, event: BatchEvent) -> None:
        if isinstance(event, ItemProgress):
            self._item_fraction = event.progress.fraction
            self._update_overall(event.progress.message)
            return
        index = self._row(event.index)
        self._saving.discard(index)
        if isinstance(event, ItemStarted):
            for other, status in self.statuses.items():
                if status is ItemStatus.RUNNING:  # computed; its file is being written
                    self._saving.add(other)
                    self._show_status(other)
            self.statuses[index] = ItemStatus.RUNNING
            self._item_fraction = 0.0
        elif isinstance(event, ItemFinished):
            self.statuses[index] = ItemStatus.DONE
            if event.node:
                self.nodes[index] = event.node
        elif isinstance(event, ItemFailed):
            self.statuses[index] = ItemStatus.FAILED
            self.reasons[index] = event.reason
        elif isinstance(event, ItemSkipped):
            self.statuses[index] = ItemStatus.SKIPPED
            self.reasons[index] = event.reason
        self._show_status(index)
        self._update_overall()

    def on_finished(self, summary: BatchSummary) -> None:
        self.running = False
        self._running_rows = []
        self.summary = summary
        done = sum(s is ItemStatus.DONE for s in self.statuses.values())
        failed = sum(s is ItemStatus.FAILED for s in self.statuses.values())
        skipped = sum(s is ItemStatus.SKIPPED for s in self.statuses.values())
        text = f"Finished in {format_seconds(summary.elapsed_s)}: {done} done"
        text += f", {failed} failed" if failed else ""
        text += f", {skipped} skipped" if skipped else ""
        self.overall.setValue(1000)
        self._say(text, error=bool(failed))
        self._update_buttons()

    def on_stopped(self, message: str) -> None:
        """The batch was cancelled, or failed before its first item."""
        self.running = False
        self._running_rows = []
        for index, status in self.statuses.items():
            if status is ItemStatus.RUNNING:
                self.statuses[index] = ItemStatus.QUEUED
                self._show_status(index)
        self._say(message, error=message != "Cancelled")
        self._update_buttons()

    def _update_overall(self, message: str = "") -> None:
        total = len(self.statuses)
        if not total:
            return
        statuses = list(self.statuses.values())
        running = ItemStatus.RUNNING in statuses
        finished = sum(
            s in (ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.SKIPPED) for s in statuses
        )
        fraction = (finished + (self._item_fraction if running else 0.0)) / total
        self.overall.setValue(int(fraction * 1000))
        elapsed = time.monotonic() - self._started
        text = f"{finished}/{total} · {format_seconds(elapsed)}"
        if fraction > 0.02:
            text += f" · about {format_seconds(elapsed * (1 - fraction) / fraction)} left"
        if message:
            text += f" · {message}"
        self._say(text)

    def _show_status(self, index: int) -> None:
        row = self.items.topLevelItem(index)
        if row is None:
            return
        status = self.statuses[index]
        row.setIcon(1, icon(_STATUS_ICONS[status]))
        text = "Saving" if index in self._saving else status.value.capitalize()
        if status is ItemStatus.DONE and index in self.nodes:
            text += f" on {self.nodes[index]}"
        row.setText(1, text)
        if index in self.reasons:
            row.setText(2, self.reasons[index])
            row.setToolTip(2, self.reasons[index])

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setObjectName("errorText" if error else "dimText")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def _update_buttons(self) -> None:
        has_plan = self.plan is not None and bool(self.plan.items)
        has_failed = any(s is ItemStatus.FAILED for s in self.statuses.values())
        self.start_button.setEnabled(has_plan and not self.running)
        self.resume_button.setEnabled(has_plan and not self.running)
        self.retry_button.setEnabled(has_failed and not self.running)
        self.cancel_button.setEnabled(self.running)
