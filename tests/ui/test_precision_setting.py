"""The precision setting (like `--precision`) reaches the worker's jobs."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from studio.ui.settings import window_settings
from studio.ui.worker import JobWorker


@pytest.mark.parametrize(("stored", "used"), [(None, "auto"), ("fp16", "fp16"), ("fp8", "auto")])
def test_worker_runs_jobs_at_the_stored_precision(
    qtbot: QtBot, stored: str | None, used: str
) -> None:
    if stored is not None:
        settings = window_settings()
        settings.setValue("compute/precision", stored)
        settings.sync()
    assert JobWorker().session.precision == used
