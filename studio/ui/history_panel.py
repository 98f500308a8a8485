"""The History panel: each applied operation is a step; click one to view it."""

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
from studio.ui.document import Document
from studio.ui.icons import icon


class HistoryPanel(QWidget):
    """Steps of the current document, the current one selected; undone steps greyed."""

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
        self.undo_button.clicked.connect(lambda: self.document and self.document.undo())
        self.redo_button = QToolButton()
        self.redo_button.setIcon(icon("redo"))
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(lambda: self.document and self.document.redo())
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
            self.document.sig_steps_changed.disconnect(self.refresh)
        self.document = document
        if document is not None:
            document.sig_steps_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        document = self.document
        self.list.blockSignals(True)
        self.list.clear()
        if document is not None:
            for index, step in enumerate(document.steps):
                item = QListWidgetItem(QIcon(QPixmap.fromImage(to_qimage(step.thumb))), step.label)
                item.setToolTip(f"{step.label}\n{step.size_text}")
                if index > document.index:
                    item.setForeground(Qt.GlobalColor.gray)
                self.list.addItem(item)
            self.list.setCurrentRow(document.index)
        self.list.blockSignals(False)
        self.undo_button.setEnabled(document is not None and document.can_undo())
        self.redo_button.setEnabled(document is not None and document.can_redo())

    def _on_row(self, row: int) -> None:
        if self.document is not None and row >= 0:
            self.document.go_to(row)

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        row = self.list.row(item)
        menu = QMenu(self)
        menu.addAction("Compare as A", lambda: self.sig_compare_requested.emit(row, "A"))
        menu.addAction("Compare as B", lambda: self.sig_compare_requested.emit(row, "B"))
        menu.exec(self.list.mapToGlobal(pos))
