"""Task inputs beyond the photo: HDR brackets with their exposure times, the style well, other
pictures, the region drawn on the photo, and the pictures an engine reported after a run."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.image import Image
from studio.core.protocol import InputKind
from studio.ui.display import thumbnail, to_bgra, to_qimage
from studio.ui.icons import REGION_ICON, icon
from studio.ui.progress_panel import figure_image, figure_size

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*(\d+(?:\.\d*)?))?\s*s?\s*$")


def parse_seconds(text: str) -> float | None:
    """'1/250', '0.004', '2 s' -> seconds; '' or nonsense -> None."""
    match = _SECONDS.match(text)
    if not match:
        return None
    numerator = float(match.group(1))
    denominator = float(match.group(2)) if match.group(2) else 1.0
    return numerator / denominator if denominator and numerator > 0 else None


def format_exposure(seconds: float | None) -> str:
    """Exposure time as a photographer writes it: '1/250 s', '0.5 s', '2 s'."""
    if seconds is None:
        return ""
    if seconds < 0.5:
        fraction = Fraction(seconds).limit_denominator(8000)
        if fraction.numerator == 1:
            return f"1/{fraction.denominator} s"
    return f"{seconds:g} s"


def image_icon(image: Image, size: int = 48) -> QIcon:
    return QIcon(QPixmap.fromImage(to_qimage(thumbnail(to_bgra(image), size))))


class BracketList(QWidget):
    """The exposures an HDR merge uses, each with its exposure time (editable)."""

    sig_add_requested = Signal()
    """Add brackets… was clicked."""
    sig_add_open_requested = Signal()
    """'Add the other open images' was clicked."""
    sig_remove_requested = Signal(int)
    """Remove the bracket at this row."""
    sig_exposure_edited = Signal(int, object)
    """A bracket's exposure time was edited: (row, seconds or None)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Exposure", "Time"])
        self.table.verticalHeader().hide()
        self.table.setIconSize(QSize(48, 32))
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.setMinimumHeight(120)
        self.table.itemChanged.connect(self._on_item_changed)
        self.note = QLabel()
        self.note.setObjectName("dimText")
        self.note.setWordWrap(True)
        add = QToolButton()
        add.setIcon(icon("image-plus"))
        add.setToolTip("Add bracket files…")
        add.clicked.connect(self.sig_add_requested)
        add_open = QToolButton()
        add_open.setIcon(icon("image-multiple-outline"))
        add_open.setToolTip("Add the other open images as brackets")
        add_open.clicked.connect(self.sig_add_open_requested)
        remove = QToolButton()
        remove.setIcon(icon("minus"))
        remove.setToolTip("Remove the selected bracket")
        remove.clicked.connect(self._remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Brackets"))
        buttons.addStretch(1)
        buttons.addWidget(add)
        buttons.addWidget(add_open)
        buttons.addWidget(remove)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.table)
        layout.addWidget(self.note)
        self._filling = False

    def set_brackets(self, images: list[Image]) -> None:
        self._filling = True
        self.table.setRowCount(len(images))
        for row, image in enumerate(images):
            path = image.meta.source_path
            name = QTableWidgetItem(image_icon(image), path.name if path else f"Exposure {row + 1}")
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            time = QTableWidgetItem(format_exposure(image.meta.exposure_time))
            time.setToolTip("Exposure time, e.g. 1/250 or 0.5 (read from EXIF when present)")
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, time)
            self.table.setRowHeight(row, 38)
        self._filling = False
        missing = sum(image.meta.exposure_time is None for image in images)
        if len(images) < 2:
            self.note.setText("Add at least two exposures of the same scene.")
        elif missing:
            self.note.setText(f"{missing} bracket(s) without an exposure time: type it in.")
        else:
            self.note.setText(f"{len(images)} exposures; they are aligned before merging.")

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 1:
            return
        self.sig_exposure_edited.emit(item.row(), parse_seconds(item.text()))

    def _remove_selected(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.sig_remove_requested.emit(row)


class PictureWell(QWidget):
    """One picture input of an engine (a reference photo...): its label, the file chosen and a
    button to choose one. Made from the input kind's declaration, for any kind of picture."""

    sig_add_requested = Signal()
    """The choose button was clicked."""

    def __init__(self, label: str, help_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.current = QLabel(f"No {label.lower()} chosen")
        self.current.setObjectName("dimText")
        self.current.setWordWrap(True)
        self._label = label
        add = QToolButton()
        add.setIcon(icon("image-plus"))
        add.setToolTip(f"Choose a {label.lower()}…: {help_text}")
        add.clicked.connect(self.sig_add_requested)
        head = QHBoxLayout()
        head.addWidget(QLabel(label))
        head.addStretch(1)
        head.addWidget(add)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.current)

    def set_chosen(self, name: str | None) -> None:
        self.current.setText(name or f"No {self._label.lower()} chosen")


class StyleWell(QWidget):
    """Thumbnails of the bundled and recent style images; click one to use it."""

    sig_style_chosen = Signal(object)
    """A style image was chosen: (Path)."""
    sig_add_requested = Signal()
    """Choose style image… was clicked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(72, 72))
        self.list.setGridSize(QSize(88, 100))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setMinimumHeight(116)
        self.list.setWordWrap(True)
        self.list.itemClicked.connect(self._on_clicked)
        self.current = QLabel("No style image chosen")
        self.current.setObjectName("dimText")
        add = QToolButton()
        add.setIcon(icon("image-plus"))
        add.setToolTip("Choose a style image…")
        add.clicked.connect(self.sig_add_requested)
        head = QHBoxLayout()
        head.addWidget(QLabel("Style image"))
        head.addStretch(1)
        head.addWidget(add)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.list)
        layout.addWidget(self.current)

    def set_styles(self, entries: list[tuple[Path, QIcon]], chosen: Path | None) -> None:
        self.list.clear()
        for path, thumb in entries:
            item = QListWidgetItem(thumb, path.stem.removeprefix("style-"))
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(str(path))
            self.list.addItem(item)
            if chosen is not None and path == chosen:
                self.list.setCurrentItem(item)
        self.current.setText(f"Using {chosen.name}" if chosen else "No style image chosen")

    def _on_clicked(self, item: QListWidgetItem) -> None:
        self.sig_style_chosen.emit(item.data(Qt.ItemDataRole.UserRole))


class RegionWell(QWidget):
    """A region input (where an engine estimates from): the region drawn on the photo and its
    size, or what the engine does without one; buttons to draw one and to clear it."""

    sig_draw_requested = Signal()
    """Draw was clicked: the region tool should be taken up."""
    sig_clear_requested = Signal()
    """Clear was clicked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.current = QLabel()
        self.current.setObjectName("dimText")
        self.current.setWordWrap(True)
        self.draw_button = QToolButton()
        self.draw_button.setIcon(icon(REGION_ICON))
        self.draw_button.setToolTip("Drag a rectangle on the photo (R)")
        self.draw_button.clicked.connect(self.sig_draw_requested)
        self.clear_button = QToolButton()
        self.clear_button.setIcon(icon("close"))
        self.clear_button.clicked.connect(self.sig_clear_requested)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.draw_button)
        head.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.current)
        self._kind: InputKind | None = None

    def set_kind(self, kind: InputKind) -> None:
        self._kind = kind
        self.title.setText(kind.label)
        self.setToolTip(f"{kind.label}: {kind.help}")
        absent = f" ({kind.when_absent})" if kind.when_absent else ""
        self.clear_button.setToolTip(f"Clear the {kind.label.lower()}{absent}")

    def show_region(self, region: QRect | None) -> None:
        """Show the region drawn (image pixels), or what happens without one."""
        kind = self._kind
        if region is not None:
            self.current.setText(f"{region.width()} × {region.height()} px, drawn on the photo")
        elif kind is not None:
            self.current.setText(kind.when_absent or f"No {kind.label.lower()} drawn")
        self.clear_button.setEnabled(region is not None)


class FigureStrip(QWidget):
    """The pictures the chosen engine reported on its last run on this photo (the estimated
    blur kernel), each with its title, the size of its non-zero part and a Save button."""

    sig_save_requested = Signal(str, object)
    """Save was clicked beside a picture: (its title, its 2-D array)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setColumnStretch(1, 1)
        self.shown: list[tuple[str, QLabel]] = []
        self._widgets: list[QWidget] = []

    def set_figures(self, figures: list[tuple[str, np.ndarray]]) -> None:
        for widget in self._widgets:
            self._grid.removeWidget(widget)
            widget.deleteLater()
        self._widgets = []
        self.shown = []
        for row, (title, array) in enumerate(figures):
            picture = QLabel()
            picture.setPixmap(QPixmap.fromImage(figure_image(array)))
            picture.setToolTip(title)
            text = QLabel(f"{title} (last run on this photo)\n{figure_size(array)}")
            text.setObjectName("dimText")
            save = QToolButton()
            save.setIcon(icon("content-save-outline"))
            save.setToolTip(f"Save the {title.lower()} to a file, to judge or reuse it")
            save.clicked.connect(
                lambda _=False, t=title, a=array: self.sig_save_requested.emit(t, a)
            )
            self._grid.addWidget(picture, row, 0)
            self._grid.addWidget(text, row, 1)
            self._grid.addWidget(save, row, 2, Qt.AlignmentFlag.AlignTop)
            self._widgets += [picture, text, save]
            self.shown.append((title, picture))
        self.setVisible(bool(figures))
