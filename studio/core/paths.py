"""Where Studio keeps the user's models, settings, logs and caches (platformdirs), and checks
on the user's own files: which are safe to read, and whether an output would replace one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

import platformdirs

from studio.core.errors import BadInputError, UsageError

APP = "studio"
MAX_NAME_BYTES = 255  # the longest file name most file systems store


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


# ---------------------------------------------------------------------------------------------
# The user's files


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file, however spelt (relative, absolute, symlink, hard link)."""
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return resolved(first) == resolved(second)


def resolved(path: Path) -> Path:
    """`path` made absolute with its symlinks followed; as given (absolute) on a symlink loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
        return path.absolute()


def require_regular_file(path: Path, what: str = "") -> None:
    """Raise `BadInputError` unless `path` is a regular file.

    A FIFO, device or socket is refused before anything opens it: reading one can block forever.
    """
    label = f"the {what} {path}" if what else str(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BadInputError(f"Cannot read {label}: no such file") from None
    except OSError as err:
        raise BadInputError(f"Cannot read {label}: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise BadInputError(f"Cannot read {label}: it is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise BadInputError(f"Cannot read {label}: not a regular file (a pipe, device or socket)")


def require_parent_folders(path: Path) -> None:
    """Raise `UsageError` when a file stands where a parent folder of `path` must be."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"Cannot write {path}: {parent} is a file, not a folder")
            return


def refuse_output_among(output: Path, files: Iterable[tuple[str, Path]]) -> None:
    """Raise `UsageError` when `output` names one of the job's (role, path) files."""
    for role, path in files:
        if same_file(output, path):
            raise UsageError(f"The output {output} is the {role} {path}: choose another name")


def require_short_name(path: Path) -> None:
    """Raise `UsageError` when the file name of `path` is longer than file systems store."""
    size = len(os.fsencode(path.name))
    if size > MAX_NAME_BYTES:
        raise UsageError(
            f"The output name {path.name[:40]}... is {size} bytes long, over the "
            f"{MAX_NAME_BYTES} a file system stores: choose a shorter name"
        )
