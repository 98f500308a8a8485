"""The inputs an engine takes besides the photo, in the Inspector: brackets, style, pictures,
the region drawn on the photo, notes, and the pictures the engine reported on its last run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

from studio.core import paths
from studio.core.image import Image
from studio.core.imageio import read_image
from studio.core.protocol import (
    HINTS,
    INPUT_KINDS,
    MASK,
    STYLE,
    EngineSpec,
    InputForm,
    InputKind,
)
from studio.ui.background import Background
from studio.ui.dialogs import ask_open_file, ask_open_files, ask_save_file
from studio.ui.document import Document
from studio.ui.inputs import BracketList, FigureStrip, PictureWell, RegionWell, StyleWell
from studio.ui.inspector import Inspector
from studio.ui.samples import bundled_styles
from studio.ui.settings import recent_paths, remember_path

MASK_NOTE = "Paint what to fill with the mask brush (B); E erases, [ and ] resize."
FIGURE_FILTER = "16-bit PNG (*.png);;NumPy array (*.npy)"
HINTS_NOTE = "Paint colour hints with the hint tool (I): a dab of the colour each area should be."


class TaskInputs(QObject):
    """The bracket list, style well and note shown in the Inspector for the chosen engine."""

    sig_inputs_changed = Signal()
    """Brackets or the style changed (a live preview is due)."""
    sig_style_loaded = Signal(object)
    """A style image was read: (its Path)."""
    sig_picture_loaded = Signal(str, object)
    """Another picture input was read: (its input kind's name, its Path)."""
    sig_message = Signal(str, bool)
    """Something to tell the user: (text, is an error)."""
    sig_region_tool_requested = Signal()
    """Draw was clicked beside the region: the region tool should be taken up."""

    def __init__(
        self,
        inspector: Inspector,
        background: Background,
        settings: QSettings,
        document: Callable[[], Document | None],
        documents: Callable[[], list[Document]],
    ) -> None:
        super().__init__(inspector)
        self.background = background
        self.settings = settings
        self._document = document
        self._documents = documents
        self._styles: list[Path] = []
        self._spec: EngineSpec | None = None
        self.brackets = BracketList()
        self.style_well = StyleWell()
        self.note = QLabel()
        self.note.setObjectName("dimText")
        self.note.setWordWrap(True)
        self.region = RegionWell()
        self.figures = FigureStrip()
        self._parent = inspector
        picture_kinds = [k for k in INPUT_KINDS if k.form is InputForm.IMAGE and k != STYLE]
        self.picture_wells = {kind.name: self._picture_well(kind) for kind in picture_kinds}
        widget: QWidget
        parts = (self.note, self.brackets, self.style_well, *self.picture_wells.values())
        for widget in (*parts, self.region, self.figures):
            inspector.inputs_box.addWidget(widget)
            widget.hide()
        self.region.sig_draw_requested.connect(self.sig_region_tool_requested)
        self.region.sig_clear_requested.connect(self.clear_region)
        self.figures.sig_save_requested.connect(self.save_figure)
        self.brackets.sig_add_requested.connect(self.choose_brackets)
        self.brackets.sig_add_open_requested.connect(self.add_open_images)
        self.brackets.sig_remove_requested.connect(self.remove_bracket)
        self.brackets.sig_exposure_edited.connect(self.set_exposure)
        self.style_well.sig_style_chosen.connect(self.load_style)
        self.style_well.sig_add_requested.connect(self.choose_style)

    def show_for(self, spec: EngineSpec | None) -> None:
        """Show the inputs `spec` takes (none without an engine)."""
        self._spec = spec
        self.brackets.setVisible(bool(spec and spec.merges_images))
        self.style_well.setVisible(bool(spec and spec.takes(STYLE)))
        note = ""
        if spec is not None and spec.takes(MASK):
            note = MASK_NOTE
        elif spec is not None and spec.takes(HINTS):
            note = HINTS_NOTE
        self.note.setText(note)
        self.note.setVisible(bool(note))
        if spec is not None and spec.takes(STYLE):
            self.refresh_style_well()
        for name, well in self.picture_wells.items():
            well.setVisible(spec is not None and any(u.kind.name == name for u in spec.inputs))
        region_kind = spec.input_of_form(InputForm.REGION) if spec is not None else None
        if region_kind is not None:
            self.region.set_kind(region_kind)
        self.region.setVisible(region_kind is not None)
        document = self._document()
        self.show_region(document)
        self.show_figures(document)

    def show_document(self, document: Document) -> None:
        self.show_region(document)
        self.show_figures(document)
        self.brackets.set_brackets(document.brackets)
        for name, well in self.picture_wells.items():
            picture = document.pictures.get(name)
            source = picture.meta.source_path if picture is not None else None
            well.set_chosen(source.name if source is not None else None)
        if self.style_well.isVisibleTo(self._parent):
            self.refresh_style_well()

    # -- region and reported pictures ---------------------------------------------------------

    def show_region(self, document: Document | None) -> None:
        self.region.show_region(document.region if document is not None else None)

    def clear_region(self) -> None:
        document = self._document()
        if document is not None:
            document.set_region(None)

    def show_figures(self, document: Document | None) -> None:
        """The pictures the chosen engine reported on its last run on `document`."""
        spec = self._spec
        if spec is None or document is None:
            self.figures.set_figures([])
            return
        keys = [(spec.id, figure.title) for figure in spec.figures]
        self.figures.set_figures(
            [
                (title, document.figures[(engine, title)])
                for engine, title in keys
                if (engine, title) in document.figures
            ]
        )

    def save_figure(self, title: str, array: np.ndarray) -> None:
        """Write a reported picture as a 16-bit PNG or .npy (what a Kernel file field reads)."""
        from studio.engine.psf import save_kernel

        document = self._document()
        stem = document.path.stem if document is not None and document.path else "photo"
        folder = document.path.parent if document is not None and document.path else Path()
        suggested = folder / f"{stem}-{title.lower().replace(' ', '-')}.png"
        path = ask_save_file(self._parent, f"Save the {title.lower()}", suggested, FIGURE_FILTER)
        if path is None:
            return
        self.background.call(
            save_kernel,
            array,
            path,
            on_done=lambda _: self.sig_message.emit(f"Saved {path.name}", False),
            on_error=lambda err: self.sig_message.emit(str(err), True),
        )

    # -- brackets -----------------------------------------------------------------------------

    def choose_brackets(self) -> None:
        document = self._document()
        if document is None:
            return
        files = ask_open_files(self._parent, "Add exposure brackets")
        if files:
            self.load_brackets(document, files)

    def load_brackets(self, document: Document, files: list[Path]) -> None:
        def read_all() -> list[Image]:
            return [read_image(path) for path in files]

        self.background.call(
            read_all,
            on_done=lambda images: document.set_brackets(document.brackets + images),
            on_error=lambda err: self.sig_message.emit(str(err), True),
        )

    def add_open_images(self) -> None:
        document = self._document()
        if document is not None:
            others = [d.current.image for d in self._documents() if d is not document]
            document.set_brackets(document.brackets + others)

    def remove_bracket(self, row: int) -> None:
        document = self._document()
        if document is not None and 0 <= row < len(document.brackets):
            brackets = list(document.brackets)
            del brackets[row]
            document.set_brackets(brackets)

    def set_exposure(self, row: int, seconds: float | None) -> None:
        document = self._document()
        if document is not None:
            document.set_exposure_time(row, seconds)

    # -- other pictures (a reference photo...) -------------------------------------------------

    def _picture_well(self, kind: InputKind) -> PictureWell:
        well = PictureWell(kind.label, kind.help)
        well.sig_add_requested.connect(lambda: self.choose_picture(kind))
        return well

    def choose_picture(self, kind: InputKind) -> None:
        path = ask_open_file(self._parent, f"Choose a {kind.label.lower()}")
        if path:
            self.load_picture(kind, path)

    def load_picture(self, kind: InputKind, path: Path) -> None:
        document = self._document()

        def done(image: Image) -> None:
            if document is not None:
                document.pictures[kind.name] = image
                self.show_document(document)
            self.sig_picture_loaded.emit(kind.name, path)
            self.sig_inputs_changed.emit()

        self.background.call(
            read_image, path, on_done=done, on_error=lambda e: self.sig_message.emit(str(e), True)
        )

    # -- style --------------------------------------------------------------------------------

    def choose_style(self) -> None:
        path = ask_open_file(self._parent, "Choose a style image")
        if path:
            self.load_style(path)

    def load_style(self, path: Path) -> None:
        document = self._document()

        def done(image: Image) -> None:
            if document is not None:
                document.style = image
            if path not in self._styles:
                remember_path(self.settings, "recent/styles", path)
            self.sig_style_loaded.emit(path)
            self.refresh_style_well()
            self.sig_inputs_changed.emit()

        self.background.call(
            read_image, path, on_done=done, on_error=lambda e: self.sig_message.emit(str(e), True)
        )

    def refresh_style_well(self) -> None:
        recent_styles = recent_paths(self.settings, "recent/styles")

        def entries() -> list[tuple[Path, QImage]]:
            self._styles = bundled_styles(paths.cache_dir() / "samples" / "styles")
            recent = [p for p in recent_styles if p not in self._styles]
            return [
                (path, QImage(str(path)).scaled(144, 144, Qt.AspectRatioMode.KeepAspectRatio))
                for path in [*self._styles, *recent]
            ]

        def show(found: list[tuple[Path, QImage]]) -> None:
            document = self._document()
            style = document.style if document is not None else None
            chosen = style.meta.source_path if style is not None else None
            icons = [(p, QIcon(QPixmap.fromImage(q))) for p, q in found]
            self.style_well.set_styles(icons, chosen)

        self.background.call(
            entries, on_done=show, on_error=lambda e: self.sig_message.emit(str(e), True)
        )
