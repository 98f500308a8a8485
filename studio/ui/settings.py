"""The window's persistent settings (layout, recent files and styles) under the config folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from studio.core import paths

SETTINGS_FILE = "studio-window.ini"
RECENT_LIMIT = 10


def window_settings() -> QSettings:
    """`<config dir>/studio-window.ini` (tests get a private config dir via STUDIO_HOME)."""
    folder = paths.config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return QSettings(str(folder / SETTINGS_FILE), QSettings.Format.IniFormat)


def recent_paths(settings: QSettings, key: str) -> list[Path]:
    value = settings.value(key, [])
    items: list[str] = [value] if isinstance(value, str) else list(value or [])  # type: ignore[call-overload]
    return [Path(item) for item in items if item and Path(item).exists()]


def remember_path(settings: QSettings, key: str, path: Path) -> list[Path]:
    """Put `path` first in the recent list `key` (deduplicated, bounded)."""
    items = [path, *(p for p in recent_paths(settings, key) if p != path)][:RECENT_LIMIT]
    settings.setValue(key, [str(p) for p in items])
    return items
