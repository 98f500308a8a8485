"""Getting the recommended set: overall progress, cancel, installed models skipped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine import models
from studio.engine.models.recommended import (
    DownloadCancelled,
    download_recommended,
    missing_recommended,
)
from tests.engine.models.helpers import FileServer, entry_for, save_tiny_dncnn


@pytest.fixture
def offered(file_server: FileServer, catalog_of: Callable[..., None], tmp_path: Path) -> bytes:
    data = save_tiny_dncnn(tmp_path / "tiny.pth").read_bytes()
    file_server.files["tiny_dncnn.pth"] = data
    catalog_of(
        entry_for(
            data,
            licence="MIT",
            commercial_use=True,
            recommended=True,
            download_url=file_server.url("tiny_dncnn.pth"),
        )
    )
    return data


def test_set_is_fetched_with_overall_progress_then_skipped(offered: bytes) -> None:
    seen: list[tuple[str, int, int | None]] = []
    installed = download_recommended(None, lambda *p: seen.append(p), lambda: False)
    assert [m.catalog_id for m in installed] == ["tiny-dncnn"]
    assert seen[-1] == ("Tiny DnCNN (test)", len(offered), len(offered))
    assert missing_recommended() == []
    assert download_recommended(None, lambda *p: seen.append(p), lambda: False) == []


def test_cancel_raises_and_installs_nothing(offered: bytes) -> None:
    with pytest.raises(DownloadCancelled):
        download_recommended("denoise", lambda *p: None, lambda: True)
    assert models.installed_models() == []
    assert [e.id for e in missing_recommended("denoise")] == ["tiny-dncnn"]
    assert missing_recommended("inpaint") == []
