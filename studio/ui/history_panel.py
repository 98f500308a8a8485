"""The History panel: the timeline of jobs, strokes and hints; click an entry to go back."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui.display import to_qimage
from studio.ui.document import Document, Step, icon_name_of, step_of
from studio.ui.icons import STROKE_ICON, icon


class HistoryPanel(QWidget):
    """The current document's undo timeline, the current entry selected; undone ones greyed."""

    sig_export_requested = Signal()
    """Export… was clicked (exports the step being viewed)."""
    sig_compare_requested = Signal(int, str)
    """Compare a step: (step index, 'A' or 'B')."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self.list = QListWidget()
        self.list.setIconSize(QSize(56, 56))
        self.list.setSpacing(1)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.currentRowChanged.connect(self._on_row)
        self.undo_button = QToolButton()
        self.undo_button.setIcon(icon("undo"))
        self.undo_button.setToolTip("Undo (Ctrl+Z)")
        self.undo_button.clicked.connect(self._undo)
        self.redo_button = QToolButton()
        self.redo_button.setIcon(icon("redo"))
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(self._redo)
        export = QPushButton(icon("export"), "Export…")
        export.setToolTip("Write the step you are viewing to a file (Ctrl+E)")
        export.clicked.connect(self.sig_export_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.undo_button)
        buttons.addWidget(self.redo_button)
        buttons.addStretch(1)
        buttons.addWidget(export)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.refresh()

    def set_document(self, document: Document | None) -> None:
        if self.document is not None:
            self.document.sig_timeline_changed.disconnect(self.refresh)
        self.document = document
        if document is not None:
            document.sig_timeline_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        document = self.document
        self.list.blockSignals(True)
        self.list.clear()
        if document is not None:
            stack = document.undo_stack
            self._add(document.original, document.original.label, done=True)
            for index in range(stack.count()):
                command = stack.command(index)
                done = index < stack.index()
                self._add(step_of(command), command.text(), done, icon_name_of(command))
            self.list.setCurrentRow(stack.index())
        self.list.blockSignals(False)
        self.undo_button.setEnabled(document is not None and document.undo_stack.canUndo())
        self.redo_button.setEnabled(document is not None and document.undo_stack.canRedo())

    def _add(self, step: Step | None, label: str, done: bool, icon_name: str = STROKE_ICON) -> None:
        if step is not None:
            item = QListWidgetItem(QIcon(QPixmap.fromImage(to_qimage(step.thumb))), label)
            item.setToolTip(f"{label}\n{step.size_text}")
        else:
            item = QListWidgetItem(icon(icon_name), label)
        item.setData(Qt.ItemDataRole.UserRole, step)
        if not done:
            item.setForeground(Qt.GlobalColor.gray)
        self.list.addItem(item)

    def _undo(self) -> None:
        if self.document is not None:
            self.document.undo_stack.undo()

    def _redo(self) -> None:
        if self.document is not None:
            self.document.undo_stack.redo()

    def _on_row(self, row: int) -> None:
        if self.document is not None and row >= 0:
            self.document.undo_stack.setIndex(row)

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        step = item.data(Qt.ItemDataRole.UserRole)
        steps = self.document.steps if self.document is not None else []
        row = next((i for i, shown in enumerate(steps) if shown is step), None)
        if row is None:
            return
        menu = QMenu(self)
        menu.addAction("Compare as A", lambda: self.sig_compare_requested.emit(row, "A"))
        menu.addAction("Compare as B", lambda: self.sig_compare_requested.emit(row, "B"))
        menu.exec(self.list.mapToGlobal(pos))
