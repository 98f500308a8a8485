"""A/B compare: two results side by side, zoomed and panned together."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from studio.ui.canvas import CanvasView
from studio.ui.document import Step


class ComparePane(QWidget):
    """Views A and B, each showing a chosen step; moving one moves the other."""

    sig_choice_changed = Signal()
    """A different step was chosen for A or B."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[Step] = []
        self.views = (CanvasView(), CanvasView())
        self.choosers = (QComboBox(), QComboBox())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for name, view, chooser in zip("AB", self.views, self.choosers, strict=True):
            chooser.currentIndexChanged.connect(self._show_choices)
            head = QHBoxLayout()
            tag = QLabel(name)
            tag.setObjectName("engineName")
            head.addWidget(tag)
            head.addWidget(chooser, 1)
            column = QVBoxLayout()
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addLayout(head)
            column.addWidget(view, 1)
            host = QWidget()
            host.setLayout(column)
            splitter.addWidget(host)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._syncing = False
        self.views[0].sig_view_changed.connect(lambda: self._sync(0))
        self.views[1].sig_view_changed.connect(lambda: self._sync(1))

    def set_steps(self, steps: list[Step], a: int, b: int) -> None:
        """Offer `steps` in both choosers and show steps `a` and `b`."""
        self.steps = steps
        for chooser, choice in zip(self.choosers, (a, b), strict=True):
            chooser.blockSignals(True)
            chooser.clear()
            for index, step in enumerate(steps):
                chooser.addItem(f"{index}. {step.label}")
            chooser.setCurrentIndex(min(max(choice, 0), len(steps) - 1))
            chooser.blockSignals(False)
        self._show_choices()

    def choose(self, slot: str, index: int) -> None:
        self.choosers["AB".index(slot)].setCurrentIndex(index)

    def chosen(self) -> tuple[int, int]:
        return self.choosers[0].currentIndex(), self.choosers[1].currentIndex()

    def _show_choices(self) -> None:
        chosen = [
            (view, self.steps[index].qimage)
            for view, index in zip(self.views, self.chosen(), strict=True)
            if 0 <= index < len(self.steps)
        ]
        size = max((image.size() for _, image in chosen), key=lambda s: s.width(), default=None)
        for view, image in chosen:
            view.set_images(image, image, size)  # a smaller step is shown enlarged to match
        self._sync(0)
        self.sig_choice_changed.emit()

    def _sync(self, source: int) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.views[1 - source].apply_view_state(self.views[source].view_state())
        finally:
            self._syncing = False
