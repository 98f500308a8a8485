"""Export: choose the file, format, bit depth and quality; EXIF and ICC are always kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledSlider

from studio.core.image import Image
from studio.core.imageio import OUTPUT_FORMATS
from studio.ui.icons import icon

FORMATS = OUTPUT_FORMATS  # suffix: (label, bit depths the format stores)
DEPTH_LABELS = {8: "8-bit", 16: "16-bit", 32: "32-bit float"}


@dataclass(frozen=True)
class ExportChoice:
    path: Path
    bit_depth: int
    quality: int


def default_suffix(image: Image, source: Path | None = None) -> str:
    """The source's format when it holds the image's depth; else TIFF for 16-bit and float
    images, JPEG for 8-bit ones."""
    suffix = source.suffix.lower() if source is not None else ""
    suffix = {".jpeg": ".jpg", ".tiff": ".tif"}.get(suffix, suffix)
    depth = 32 if image.meta.is_float else image.meta.bit_depth
    if suffix in FORMATS and depth in FORMATS[suffix][1]:
        return suffix
    return ".tif" if depth > 8 else ".jpg"


class ExportDialog(QDialog):
    def __init__(self, image: Image, suggested: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(520)
        self._image = image
        self.path = QLineEdit(str(suggested))
        self.path.editingFinished.connect(self._on_path_edited)
        browse = QToolButton()
        browse.setIcon(icon("folder-open-outline"))
        browse.clicked.connect(self._browse)
        self.format_box = QComboBox()
        for suffix, (label, _) in FORMATS.items():
            self.format_box.addItem(label, suffix)
        self.format_box.currentIndexChanged.connect(self._on_format)
        self.depth_box = QComboBox()
        self.depth_box.currentIndexChanged.connect(self._update_note)
        self.quality = QLabeledSlider(Qt.Orientation.Horizontal)
        self.quality.setRange(1, 100)
        self.quality.setValue(95)
        self.note = QLabel()
        self.note.setObjectName("dimText")
        self.note.setWordWrap(True)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("File", path_row)
        form.addRow("Format", self.format_box)
        form.addRow("Bit depth", self.depth_box)
        form.addRow("Quality", self.quality)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self._select_format(suggested.suffix.lower())

    def choice(self) -> ExportChoice:
        return ExportChoice(
            Path(self.path.text()).expanduser(), self.depth_box.currentData(), self.quality.value()
        )

    def _select_format(self, suffix: str) -> None:
        suffix = ".jpg" if suffix == ".jpeg" else ".tif" if suffix == ".tiff" else suffix
        index = self.format_box.findData(suffix)
        self.format_box.setCurrentIndex(index if index >= 0 else 0)
        self._on_format()

    def _on_format(self) -> None:
        suffix = self.format_box.currentData()
        _, depths = FORMATS[suffix]
        self.depth_box.blockSignals(True)
        self.depth_box.clear()
        for depth in depths:
            self.depth_box.addItem(DEPTH_LABELS[depth], depth)
        source = self._image.meta.bit_depth
        best = source if source in depths else max(d for d in depths if d <= max(source, depths[0]))
        self.depth_box.setCurrentIndex(self.depth_box.findData(best))
        self.depth_box.blockSignals(False)
        self.quality.setEnabled(suffix in (".jpg", ".webp"))
        path = Path(self.path.text())
        if path.suffix.lower() != suffix:
            self.path.setText(str(path.with_suffix(suffix)))
        self._update_note()

    def _on_path_edited(self) -> None:
        suffix = Path(self.path.text()).suffix.lower()
        if suffix and suffix != self.format_box.currentData():
            self._select_format(suffix)

    def _browse(self) -> None:
        filters = ";;".join(f"{label} (*{suffix})" for suffix, (label, _) in FORMATS.items())
        path, _ = QFileDialog.getSaveFileName(self, "Export as", self.path.text(), filters)
        if path:
            self.path.setText(path)
            self._on_path_edited()

    def _update_note(self) -> None:
        depth = self.depth_box.currentData()
        notes = ["EXIF, the colour profile and XMP are kept; the original is never replaced."]
        if self._image.meta.is_float and depth != 32:
            notes.append("This is a float (HDR) image: values above 1 are clipped at this depth.")
        elif depth is not None and depth < self._image.meta.bit_depth:
            notes.append(
                f"The source has {self._image.meta.bit_depth}-bit samples; this reduces them."
            )
        self.note.setText(" ".join(notes))
