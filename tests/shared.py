"""Paths to the real weights and photos in ../shared; tests using them skip when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(
    os.environ.get("STUDIO_TEST_SHARED") or Path(__file__).resolve().parents[2] / "shared"
)
"""../shared, or the folder STUDIO_TEST_SHARED names (a missing one runs the suite as CI does)."""


def shared_file(*parts: str) -> Path:
    """A file or folder under ../shared, or skip the calling test cleanly when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path
