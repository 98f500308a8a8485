"""File dialogs for images, starting in the folder the last one was left in."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from studio.core.imageio import SUPPORTED_EXTENSIONS
from studio.ui.settings import last_folder, remember_folder

IMAGE_FILTER = "Images ({});;All files (*)".format(
    " ".join(f"*{suffix}" for suffix in sorted(SUPPORTED_EXTENSIONS))
)


def ask_open_files(parent: QWidget, title: str, filters: str = IMAGE_FILTER) -> list[Path]:
    files, _ = QFileDialog.getOpenFileNames(parent, title, last_folder(), filters)
    if files:
        remember_folder(Path(files[0]))
    return [Path(f) for f in files]


def ask_open_file(parent: QWidget, title: str, filters: str = IMAGE_FILTER) -> Path | None:
    path, _ = QFileDialog.getOpenFileName(parent, title, last_folder(), filters)
    if not path:
        return None
    remember_folder(Path(path))
    return Path(path)


def ask_save_file(parent: QWidget, title: str, suggested: Path, filters: str) -> Path | None:
    """A file to write, suggested beside the source (the user's folder when it is known)."""
    path, _ = QFileDialog.getSaveFileName(parent, title, str(suggested), filters)
    if not path:
        return None
    remember_folder(Path(path))
    return Path(path)
