"""Where Studio keeps the user's models, settings, logs and caches (platformdirs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "studio"


def _root(kind: str) -> Path:
    """`STUDIO_HOME` puts everything under one folder (tests, portable installs)."""
    home = os.environ.get("STUDIO_HOME")
    if home:
        return Path(home) / kind
    dirs = platformdirs.PlatformDirs(APP, appauthor=False)
    return Path(
        {
            "data": dirs.user_data_dir,
            "config": dirs.user_config_dir,
            "cache": dirs.user_cache_dir,
            "log": dirs.user_log_dir,
        }[kind]
    )


def models_dir() -> Path:
    """Installed model files; `STUDIO_MODELS_DIR` overrides."""
    override = os.environ.get("STUDIO_MODELS_DIR")
    return Path(override) if override else _root("data") / "models"


def config_dir() -> Path:
    return _root("config")


def cache_dir() -> Path:
    return _root("cache")


def log_dir() -> Path:
    return _root("log")
