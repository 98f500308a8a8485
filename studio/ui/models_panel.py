"""The Models panel: pick a task, then one of the engines that can do it on this machine."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.protocol import Availability, EngineSpec, Kind, RunContext
from studio.core.registry import Registry
from studio.engine.models.defaults import pin_default
from studio.ui.icons import icon, task_icon, task_title
from studio.ui.recommended import RecommendedOffer

TASK_COLUMNS = 4
ENGINES_IN_VIEW = 2
"""The engine list is at least high enough for this many engines, so that it reads as a list."""


def availability(spec: EngineSpec, ctx: RunContext) -> Availability:
    """Whether `spec` can run now; an engine whose check itself fails is unavailable."""
    try:
        return spec.available(ctx)
    except Exception as err:  # a broken availability check must not break the panel
        return Availability(False, f"availability check failed: {err}")


def badge(text: str, kind: str, tooltip: str = "") -> QLabel:
    label = QLabel(text)
    label.setProperty("badge", True)
    label.setProperty("badgeKind", kind)
    label.setToolTip(tooltip)
    return label


class EngineRow(QWidget):
    """One engine: name, description, badges, and why it cannot run (if it cannot)."""

    def __init__(self, spec: EngineSpec, status: Availability) -> None:
        super().__init__()
        name = QLabel(spec.name + ("  (default)" if spec.default else ""))
        if spec.default and spec.default_reason:
            name.setToolTip(f"Default: {spec.default_reason}")
        name.setObjectName("engineName")
        description = QLabel(spec.description)
        description.setObjectName("engineDescription")
        description.setWordWrap(True)
        badges = QHBoxLayout()
        badges.setSpacing(4)
        if spec.kind is Kind.NEURAL:
            badges.addWidget(badge("Neural", "neural", "A published neural network"))
        else:
            badges.addWidget(badge("Built-in", "builtin", "Ships with Studio, always available"))
        if spec.gpu_recommended:
            badges.addWidget(badge("GPU recommended", "gpu", "Slow on a CPU"))
        else:
            badges.addWidget(badge("Fine on CPU", "cpu", "Runs well without a GPU"))
        if spec.licence:
            badges.addWidget(badge(spec.licence, "licence", "Licence of the model weights"))
        badges.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(3)
        layout.addWidget(name)
        if spec.description:
            layout.addWidget(description)
        layout.addLayout(badges)
        if not status.ok:
            reason = QLabel(f"Unavailable: {status.reason}")
            reason.setObjectName("warningText")
            reason.setWordWrap(True)
            layout.addWidget(reason)
            self.setEnabled(False)
        self.setToolTip(spec.description if status.ok else status.reason)


class ModelsPanel(QWidget):
    """Task buttons over the list of that task's engines."""

    sig_task_chosen = Signal(str)
    """The user chose a task: (task)."""
    sig_engine_chosen = Signal(object)
    """The user chose an engine: (EngineSpec, or None when the task has none available)."""
    sig_import_requested = Signal()
    """Import model… was clicked."""
    sig_manage_requested = Signal()
    """Manage models… was clicked."""
    sig_model_file_requested = Signal()
    """Model file… was clicked (run a checkpoint without installing it)."""
    sig_models_changed = Signal()
    """Models were installed or the default engine changed: the registry should be rebuilt."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = Registry()
        self.device = "auto"
        self.model_path: Path | None = None
        """The checkpoint the 'Model file' engines run; each job carries it to the worker."""
        self.task = ""
        self._status: dict[tuple[str, str], Availability] = {}
        self._task_buttons = QButtonGroup(self)
        self._task_buttons.setExclusive(True)
        self._task_grid = QGridLayout()
        self._task_grid.setSpacing(2)
        self.engine_list = QListWidget()
        self.engine_list.setObjectName("engineList")
        self.engine_list.setSpacing(2)
        self.engine_list.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.engine_list.currentItemChanged.connect(self._on_engine_item)
        import_button = QPushButton(icon("file-import-outline"), "Import model…")
        import_button.setToolTip("Add a checkpoint file (.pth, .safetensors…) to your models")
        import_button.clicked.connect(self.sig_import_requested)
        manage_button = QPushButton(icon("cog-outline"), "Manage models…")
        manage_button.setToolTip("List, verify, remove and download models")
        manage_button.clicked.connect(self.sig_manage_requested)
        self.model_file_button = QToolButton()
        self.model_file_button.setIcon(icon("file-outline"))
        self.model_file_button.setToolTip(
            "Run a checkpoint file without installing it (the 'Model file' engines)"
        )
        self.model_file_button.clicked.connect(self.sig_model_file_requested)
        self.model_file_label = QLabel()
        self.model_file_label.setObjectName("dimText")
        self.model_file_label.setWordWrap(True)
        self.model_file_label.hide()
        self.default_note = QLabel()
        self.default_note.setObjectName("dimText")
        self.default_note.setWordWrap(True)
        # Long names must not widen the dock: the label clips, its tooltip has it all.
        self.default_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.make_default_button = QPushButton(icon("star-outline"), "Make default")
        self.make_default_button.setToolTip(
            "Use the selected engine for this task whenever you do not pick one"
        )
        self.make_default_button.clicked.connect(self._make_default)
        self.recommended = RecommendedOffer(task=None, compact=True)
        self.recommended.sig_models_changed.connect(self.sig_models_changed)
        buttons = QHBoxLayout()
        buttons.addWidget(import_button)
        buttons.addWidget(manage_button)
        buttons.addWidget(self.model_file_button)
        default_row = QHBoxLayout()
        default_row.addWidget(self.default_note, 1)
        default_row.addWidget(self.make_default_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(self._task_grid)
        layout.addWidget(self.engine_list, 1)
        layout.addLayout(default_row)
        layout.addWidget(self.recommended)
        layout.addWidget(self.model_file_label)
        layout.addLayout(buttons)

    @property
    def context(self) -> RunContext:
        """A job's context with the chosen model file, to ask engines whether they can run."""
        return RunContext(device=self.device, model_path=self.model_path)

    def set_registry(self, registry: Registry) -> None:
        """Show `registry`'s tasks and engines, keeping the current task and engine if present."""
        self.registry = registry
        self._check_availability()
        self._build_task_buttons()
        current = self.current_engine()
        tasks = registry.tasks()
        task = self.task if self.task in tasks else (tasks[0] if tasks else "")
        # An engine the user picked stays picked; one that was only the default follows it.
        kept = current.id if current is not None and not current.default else None
        self.set_task(task, kept)

    def set_model_file(self, path: Path | None) -> None:
        """The checkpoint the 'Model file' engines run (None: none chosen)."""
        self.model_path = path
        self.model_file_label.setText(f"Model file: {path.name}" if path else "")
        self.model_file_label.setToolTip(str(path) if path else "")
        self.model_file_label.setVisible(path is not None)
        self._check_availability()
        current = self.current_engine()
        self.set_task(self.task, current.id if current is not None else None)

    def _check_availability(self) -> None:
        registry = self.registry
        self._status = {
            (spec.task, spec.id): availability(spec, self.context)
            for task in registry.tasks()
            for spec in registry.engines(task)
        }

    def _build_task_buttons(self) -> None:
        for button in self._task_buttons.buttons():
            self._task_buttons.removeButton(button)
            button.deleteLater()
        for index, task in enumerate(self.registry.tasks()):
            button = QToolButton()
            button.setObjectName("taskButton")
            button.setCheckable(True)
            button.setIcon(task_icon(task))
            button.setIconSize(QSize(20, 20))
            button.setText(task_title(task))
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setProperty("task", task)
            button.clicked.connect(lambda _=False, t=task: self._on_task_clicked(t))
            self._task_buttons.addButton(button)
            self._task_grid.addWidget(button, index // TASK_COLUMNS, index % TASK_COLUMNS)

    def _on_task_clicked(self, task: str) -> None:
        self.set_task(task)
        self.sig_task_chosen.emit(task)

    def set_task(self, task: str, engine_id: str | None = None) -> None:
        """Show `task`'s engines and choose `engine_id`, else the first one that can run."""
        self.task = task
        for button in self._task_buttons.buttons():
            button.setChecked(button.property("task") == task)
        self.engine_list.blockSignals(True)
        self.engine_list.clear()
        choice = None
        for spec in self.registry.engines(task) if task else []:
            status = self._status.get((spec.task, spec.id), Availability(True))
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, spec)
            row = EngineRow(spec, status)
            item.setSizeHint(row.sizeHint())
            if not status.ok:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.engine_list.addItem(item)
            self.engine_list.setItemWidget(item, row)
            if status.ok and (choice is None or spec.id == engine_id):
                choice = item
        self.engine_list.blockSignals(False)
        self._keep_engines_in_view()
        self._show_default(task)
        self.recommended.set_task(task or None)
        if choice is not None:
            self.engine_list.setCurrentItem(choice)
        else:
            self.sig_engine_chosen.emit(None)

    def _keep_engines_in_view(self) -> None:
        """Make the list at least high enough for its first ENGINES_IN_VIEW engines."""
        engine_list = self.engine_list
        shown = range(min(ENGINES_IN_VIEW, engine_list.count()))
        rows = sum(engine_list.item(row).sizeHint().height() for row in shown)
        margins = 2 * engine_list.spacing() * len(shown) + 2 * engine_list.frameWidth()
        engine_list.setMinimumHeight(max(rows + margins, engine_list.minimumSizeHint().height()))

    def _show_default(self, task: str) -> None:
        default = (
            next((s for s in self.registry.engines(task) if s.default), None) if task else None
        )
        if default is None:
            self.default_note.setText("")
            return
        why = default.default_reason or "Studio's built-in choice: a ranked model you install leads"
        short = default.default_reason.split(" (", 1)[0] if default.default_reason else "built-in"
        self.default_note.setText(f"Default: {default.name} — {short}")
        self.default_note.setToolTip(why)
        self._update_default_button()

    def _update_default_button(self) -> None:
        spec = self.current_engine()
        self.make_default_button.setEnabled(spec is not None and not spec.default)

    def _make_default(self) -> None:
        spec = self.current_engine()
        if spec is not None:
            pin_default(spec.task, spec.id)
            self.sig_models_changed.emit()

    def select_engine(self, engine_id: str) -> bool:
        for index in range(self.engine_list.count()):
            item = self.engine_list.item(index)
            spec = item.data(Qt.ItemDataRole.UserRole)
            if spec.id == engine_id and item.flags() & Qt.ItemFlag.ItemIsEnabled:
                self.engine_list.setCurrentItem(item)
                return True
        return False

    def current_engine(self) -> EngineSpec | None:
        item = self.engine_list.currentItem()
        spec: EngineSpec | None = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return spec

    def status_of(self, spec: EngineSpec) -> Availability:
        return self._status.get((spec.task, spec.id), Availability(True))

    def _on_engine_item(self, item: QListWidgetItem | None, _previous: object) -> None:
        self._update_default_button()
        self.sig_engine_chosen.emit(item.data(Qt.ItemDataRole.UserRole) if item else None)
