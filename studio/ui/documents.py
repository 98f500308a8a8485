"""The open photos: reading them off the GUI thread, one tab each, and which one is shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QTabBar, QToolButton

from studio.core.errors import StudioError
from studio.core.imageio import read_image
from studio.ui.background import Background
from studio.ui.document import Document, Step, make_step
from studio.ui.icons import icon
from studio.ui.inputs import image_icon
from studio.ui.settings import remember_path


def _load_step(path: Path) -> tuple[Path, Step]:
    """Read a file and prepare it for display (runs on the thread pool)."""
    image = read_image(path)
    return path, make_step(f"Open {path.name}", image)


def open_error(path: Path, error: BaseException) -> str:
    """Why `path` could not be opened, in one line that names it."""
    text = str(error)
    if isinstance(error, StudioError) and path.name in text:
        return text
    return f"Cannot open {path.name}: {text}"


class DocumentTabs(QObject):
    """The documents, in tab order, and the current one."""

    sig_added = Signal(object)
    """A document was added and made current: (Document)."""
    sig_open_failed = Signal(object, str)
    """A file could not be opened: (Path, message)."""
    sig_current_changed = Signal(object)
    """Another document (or none) is shown: (Document | None)."""
    sig_close_requested = Signal(object)
    """A tab's close button was clicked: (Document)."""

    def __init__(self, tabs: QTabBar, background: Background, settings: QSettings) -> None:
        super().__init__(tabs)
        self.tabs = tabs
        self.background = background
        self.settings = settings
        self.documents: list[Document] = []
        self.current: Document | None = None
        self.loading = 0
        tabs.currentChanged.connect(self._on_tab_changed)

    def open_file(self, path: Path, then: Callable[[Document], None] | None = None) -> None:
        """Read `path` off the GUI thread, then show it in a new tab."""
        self.loading += 1

        def done(result: tuple[Path, Step]) -> None:
            self.loading -= 1
            path_, step = result
            document = Document(path_, step, self)
            remember_path(self.settings, "recent/files", path_)
            self.add(document)
            if then is not None:
                then(document)

        def failed(error: BaseException) -> None:
            self.loading -= 1
            self.sig_open_failed.emit(path, open_error(path, error))

        self.background.call(_load_step, path, on_done=done, on_error=failed)

    def add(self, document: Document) -> None:
        """Give `document` a tab and make it current."""
        document.setParent(self)
        self.documents.append(document)
        index = self.tabs.addTab(image_icon(document.current.image, 16), document.name)
        self.tabs.setTabToolTip(index, str(document.path or document.name))
        close = QToolButton()
        close.setIcon(icon("close"))
        close.setToolTip("Close this image")
        close.setAutoRaise(True)
        close.clicked.connect(lambda _=False, d=document: self.sig_close_requested.emit(d))
        self.tabs.setTabButton(index, QTabBar.ButtonPosition.RightSide, close)
        self._set_current(document)
        self.tabs.setCurrentIndex(index)
        self.sig_added.emit(document)

    def remove(self, document: Document) -> None:
        """Drop `document` and its tab; the tab beside it becomes current."""
        index = self.documents.index(document)
        self.documents.pop(index)
        self.tabs.removeTab(index)
        if self.current is document:
            current = self.tabs.currentIndex()
            self._set_current(self.documents[current] if self.documents else None)
        document.deleteLater()

    def _on_tab_changed(self, index: int) -> None:
        if 0 <= index < len(self.documents) and self.documents[index] is not self.current:
            self._set_current(self.documents[index])

    def _set_current(self, document: Document | None) -> None:
        self.current = document
        self.sig_current_changed.emit(document)
