"""Writing results and masks to files, off the GUI thread; originals are never overwritten."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from studio.core.image import Image
from studio.core.imageio import write_image
from studio.ui.background import Background
from studio.ui.dialogs import ask_save_file
from studio.ui.document import Document, Step
from studio.ui.export_dialog import ExportDialog, default_suffix
from studio.ui.settings import last_folder


def suggest_path(document: Document, tag: str, suffix: str) -> Path:
    """Beside the photo's source (or in the last folder used) as `<name>_<tag><suffix>`."""
    if document.path is not None:
        base = document.path
    else:
        base = Path(last_folder() or Path.home()) / document.name
    return base.with_name(f"{base.stem}_{tag}{suffix}")


class Exporter(QObject):
    """Asks where to write a step or a mask, and writes it on the thread pool."""

    sig_exported = Signal(object, object, object)
    """A step was written: (Document, Step, Path written)."""
    sig_message = Signal(str, bool)
    """Something to tell the user: (text, is an error)."""

    def __init__(self, background: Background, parent: QWidget) -> None:
        super().__init__(parent)
        self.background = background
        self.parent_widget = parent

    def export(self, document: Document) -> None:
        """Ask for a file, format and depth, then write the step being viewed."""
        step = document.current
        source = document.path or step.image.meta.source_path
        suggested = suggest_path(document, step.task or "copy", default_suffix(step.image, source))
        dialog = ExportDialog(step.image, suggested, self.parent_widget)
        if dialog.exec() != ExportDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()
        self.export_step(document, step, choice.path, choice.bit_depth, choice.quality)

    def export_step(
        self, document: Document, step: Step, path: Path, bit_depth: int | None, quality: int = 95
    ) -> None:
        """Write `step` of `document` to `path`; the document's sources are never overwritten."""
        inputs = document.source_paths()
        self.sig_message.emit(f"Exporting {path.name}…", False)

        def done(written: Path) -> None:
            self.sig_message.emit(f"Exported {written}", False)
            self.sig_exported.emit(document, step, written)

        self.background.call(
            lambda: write_image(
                step.image, path, bit_depth=bit_depth, quality=quality, inputs=inputs
            ),
            on_done=done,
            on_error=self._failed,
        )

    def save_mask(self, document: Document) -> None:
        suggested = suggest_path(document, "mask", ".png")
        path = ask_save_file(self.parent_widget, "Save the mask", suggested, "PNG (*.png)")
        if path:
            self.write_mask(document, path)

    def write_mask(self, document: Document, path: Path) -> None:
        """Write the mask as a grey PNG (white = painted)."""
        mask = Image(document.mask.alpha()[..., None])
        self.background.call(
            lambda: write_image(mask, path, bit_depth=8),
            on_done=lambda written: self.sig_message.emit(f"Mask saved to {written}", False),
            on_error=lambda e: self.sig_message.emit(str(e), True),
        )

    def _failed(self, error: BaseException) -> None:
        self.sig_message.emit(f"Export failed: {error}", True)
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Export failed", str(error), parent=self.parent_widget
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
