"""Where the window finds its theme and icons (`resources/` beside the package)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """`STUDIO_RESOURCES`, the checkout's `resources/`, or `<prefix>/share/studio`."""
    override = os.environ.get("STUDIO_RESOURCES")
    candidates = [Path(override)] if override else []
    candidates += [
        Path(__file__).resolve().parents[2] / "resources",
        Path(sys.prefix) / "share" / "studio",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
