"""The window's persistent settings (layout, recent files and styles) under the config folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from studio.core import paths
from studio.core.protocol import PRECISIONS

SETTINGS_FILE = "studio-window.ini"
RECENT_LIMIT = 10


def window_settings() -> QSettings:
    """`<config dir>/studio-window.ini` (tests get a private config dir via STUDIO_HOME)."""
    folder = paths.config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return QSettings(str(folder / SETTINGS_FILE), QSettings.Format.IniFormat)


def precision_setting() -> str:
    """`compute/precision` in the settings file: auto, fp32, fp16 or bf16 (as `--precision`)."""
    value = window_settings().value("compute/precision", "auto")
    return value if value in PRECISIONS else "auto"


def recent_paths(settings: QSettings, key: str) -> list[Path]:
    value = settings.value(key, [])
    items: list[str] = [value] if isinstance(value, str) else list(value or [])  # type: ignore[call-overload]
    return [Path(item) for item in items if item and Path(item).exists()]


def remember_path(settings: QSettings, key: str, path: Path) -> list[Path]:
    """Put `path` first in the recent list `key` (deduplicated, bounded)."""
    items = [path, *(p for p in recent_paths(settings, key) if p != path)][:RECENT_LIMIT]
    settings.setValue(key, [str(p) for p in items])
    return items


def last_folder() -> str:
    """The folder the last file dialog was left in ('' before the first one)."""
    folder = window_settings().value("dialogs/folder", "")
    return folder if isinstance(folder, str) and Path(folder).is_dir() else ""


def remember_folder(path: Path) -> None:
    """Start the next file dialog where `path` is (a file's folder, or the folder itself)."""
    folder = path if path.is_dir() else path.parent
    settings = window_settings()
    settings.setValue("dialogs/folder", str(folder))
    settings.sync()
