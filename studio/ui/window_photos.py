"""The window's photos: opening (files, folders, samples, recent), showing, exporting and
closing them, and asking before unexported results are lost."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QMessageBox

from studio.core import paths
from studio.core.imageio import read_mask
from studio.ui.dialogs import ask_open_files
from studio.ui.display import contrasting_colour
from studio.ui.document import Document, Step
from studio.ui.samples import Sample, ensure_samples
from studio.ui.settings import recent_paths

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


def _thumbnails(samples: list[Sample]) -> list[tuple[Sample, QImage]]:
    """Sample thumbnails as QImages (safe off the GUI thread, unlike QPixmap)."""
    return [
        (sample, QImage(str(sample.images[0])).scaled(360, 240, Qt.AspectRatioMode.KeepAspectRatio))
        for sample in samples
    ]


class WindowPhotos:
    """Opens, shows, exports and closes the window's photos (one tab each)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self._shown: Document | None = None

    @property
    def documents(self) -> list[Document]:
        return self.window.tabs.documents

    @property
    def document(self) -> Document | None:
        return self.window.tabs.current

    # -- opening ------------------------------------------------------------------------------

    def choose_files(self) -> None:
        self.open_paths(ask_open_files(self.window, "Open images"))

    def open_paths(self, paths_: Sequence[str | Path]) -> None:
        """Open image files; folders go to the Batch panel."""
        folders = [Path(p) for p in paths_ if Path(p).is_dir()]
        files = [Path(p) for p in paths_ if not Path(p).is_dir()]
        w = self.window
        if folders:
            w.batch_panel.add_sources(folders)
            w.docks.show_batch()
            w.notify(f"Added {len(folders)} folder(s) to the batch")
        for path in files:
            self.open_file(path)

    def open_file(self, path: Path, then: Callable[[Document], None] | None = None) -> None:
        """Read `path` off the GUI thread, then show it in a new tab."""
        self.window.notify(f"Opening {path.name}…")
        self.window.tabs.open_file(path, then)

    def on_document_added(self, document: Document) -> None:
        document.sig_steps_changed.connect(lambda d=document: self._on_steps_changed(d))
        document.sig_timeline_changed.connect(lambda d=document: self._on_timeline(d))
        document.sig_brackets_changed.connect(lambda d=document: self._on_brackets_changed(d))
        document.sig_region_changed.connect(lambda d=document: self._on_region_changed(d))
        document.sig_figures_changed.connect(lambda d=document: self._on_figures_changed(d))
        self.window.notify(f"Opened {document.name} · {document.current.size_text}")
        self.window.sig_document_opened.emit(document)

    def on_open_failed(self, path: Path, message: str) -> None:
        w = self.window
        w.progress_panel.add_failure("open", path.name, message)
        w.docks.show_progress()
        w.notify(message, error=True)

    def open_sample(self, sample: Sample) -> None:
        """Open a sample with what its job needs (mask, brackets, style) and choose the task."""
        w = self.window

        def ready(document: Document) -> None:
            w.models_panel.set_task(sample.task)
            if sample.mask is not None:
                w.background.call(
                    read_mask,
                    sample.mask,
                    (document.original.image.height, document.original.image.width),
                    on_done=lambda mask: document.mask.set_alpha(mask, "Load sample mask"),
                )
            if len(sample.images) > 1:
                w.task_inputs.load_brackets(document, list(sample.images[1:]))
            if sample.style is not None:
                w.task_inputs.load_style(sample.style)

        self.open_file(sample.images[0], then=ready)

    def fill_recent_menu(self) -> None:
        menu = self.window.recent_menu
        menu.clear()
        for path in recent_paths(self.window.settings, "recent/files"):
            action = menu.addAction(path.name)
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        if menu.isEmpty():
            menu.addAction("No recent files").setEnabled(False)

    def show_welcome(self) -> None:
        self.window.canvas_panel.show_welcome()
        self.window.docks["canvas"].show()

    def prepare_welcome(self) -> None:
        w = self.window
        folder = paths.cache_dir() / "samples"

        def done(thumbs: list[tuple[Sample, QImage]]) -> None:
            w.welcome.set_samples([(s, QPixmap.fromImage(t)) for s, t in thumbs])

        w.background.call(
            lambda: _thumbnails(ensure_samples(folder)),
            on_done=done,
            on_error=lambda err: w.welcome.set_samples_error(str(err)),
        )

    # -- showing ------------------------------------------------------------------------------

    def on_tab_clicked(self, index: int) -> None:
        """Clicking a tab leaves the welcome page (Help › Welcome) for the photo."""
        if 0 <= index < len(self.documents) and not self.window.act["compare"].isChecked():
            self.window.canvas_panel.show_view()

    def set_document(self, document: Document | None) -> None:
        w = self.window
        canvas = w.canvas
        shown = self._shown
        if shown is not None and shown in self.documents:
            shown.view = None if canvas.fitted else canvas.view_state()
        self._shown = document
        w.history_panel.set_document(document)
        canvas.set_preview(None)
        if document is None:
            w.act["compare"].setChecked(False)
            canvas.set_images(None, None)
            canvas.set_layers(None, None)
            w.canvas_panel.show_welcome()
            w.status_image.setText("")
            w.status_zoom.setText("")
        else:
            self._show_step(document)
            if not w.act["compare"].isChecked():
                w.canvas_panel.show_view()
            self._show_mask_colour(document)
            if document.view is None:
                canvas.zoom_fit()  # a new photo opens whole, whatever the last one showed
            else:
                canvas.apply_view_state(document.view)
            w.task_inputs.show_document(document)
        w.tools.show_region()
        w.update_actions()

    def _show_step(self, document: Document) -> None:
        w = self.window
        w.canvas.set_images(document.before.qimage, document.current.qimage)
        w.canvas.set_layers(document.mask, document.hints)
        w.status_image.setText(document.current.size_text)
        if w.act["compare"].isChecked():
            w.views.fill_compare()

    def _show_mask_colour(self, document: Document) -> None:
        """The colour the user chose for masks, else the one that stands out on this photo."""
        panel = self.window.canvas_panel
        chosen = self.window.settings.value("canvas/mask_colour", "")
        if isinstance(chosen, str) and QColor(chosen).isValid():
            panel.show_mask_colour(QColor(chosen))
        else:
            panel.show_mask_colour(QColor(*contrasting_colour(document.current.thumb)))

    def _on_steps_changed(self, document: Document) -> None:
        if document is self.document:
            self.window.canvas.set_preview(None)
            self._show_step(document)
            self.window.task_inputs.show_region(document)  # gone if the step resized the photo
            self.window.tools.show_region()
            self.window.update_actions()
            self.window.jobs.schedule_preview()

    def _on_timeline(self, document: Document) -> None:
        """A job, stroke or hint was done, undone or redone."""
        if document is self.document:
            self.window.tools.layers_edited()

    def _on_region_changed(self, document: Document) -> None:
        if document is self.document:
            self.window.task_inputs.show_region(document)
            self.window.tools.show_region()
            self.window.jobs.schedule_preview()

    def _on_figures_changed(self, document: Document) -> None:
        if document is self.document:
            self.window.task_inputs.show_figures(document)

    def _on_brackets_changed(self, document: Document) -> None:
        if document is self.document:
            self.window.brackets.set_brackets(document.brackets)
            self.window.jobs.schedule_preview()

    # -- exporting ----------------------------------------------------------------------------

    def export_current(self) -> None:
        if self.document is not None:
            self.window.exporter.export(self.document)

    def export_step(self, step: Step, path: Path, bit_depth: int | None, quality: int = 95) -> None:
        """Write `step` of the current document off the GUI thread."""
        assert self.document is not None
        self.window.exporter.export_step(self.document, step, path, bit_depth, quality)

    # -- closing ------------------------------------------------------------------------------

    def close_document(self, index: int | None = None) -> None:
        tabs = self.window.canvas_panel.tabs
        index = tabs.currentIndex() if index is None else index
        if 0 <= index < len(self.documents):
            self.close(self.documents[index])

    def close(self, document: Document) -> None:
        if document.has_unexported_result() and not self.confirm_discard([document]):
            return
        self.window.jobs.cancel_document(document)
        self.window.tabs.remove(document)

    def confirm_discard(self, documents: list[Document], jobs: int = 0) -> bool:
        """Ask before losing unexported results (and stopping running jobs)."""
        lines = []
        if documents:
            names = ", ".join(d.name for d in documents)
            lines.append(f"Results not exported yet: {names}. They will be lost.")
        if jobs:
            lines.append(f"{jobs} job(s) still running will be cancelled.")
        answer = QMessageBox.question(
            self.window,
            "Discard results?",
            "\n".join(lines),
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard
