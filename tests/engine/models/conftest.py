"""Fixtures for the model-manager tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engine.models.helpers import FileServer, save_tiny_dncnn, serve, use_catalog


@pytest.fixture
def tiny_dncnn(tmp_path: Path) -> Path:
    return save_tiny_dncnn(tmp_path / "src" / "my_dncnn.pth")


@pytest.fixture
def catalog_of(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Call with catalog entries to make them the whole catalog for one test."""
    return lambda *entries: use_catalog(monkeypatch, *entries)


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    with serve() as server:
        yield server
