"""Getting each task's recommended model in one go, with overall progress and cancel.

Used by the window (first-run page, Models panel) on a worker thread; the CLI downloads the
same set one model at a time. Already-installed models are skipped.
"""

from __future__ import annotations

from collections.abc import Callable

from studio.core.errors import StudioError
from studio.engine.models._catalog import CatalogEntry, recommendations
from studio.engine.models._download import download
from studio.engine.models.store import InstalledModel, installed_models

SetProgress = Callable[[str, int, int | None], None]
"""Called with (the model being fetched, bytes of the set done, bytes of the set or None)."""


class DownloadCancelled(StudioError):
    """The user cancelled; the partial file stays in the downloads folder and resumes later."""

    exit_code = 130


def missing_recommended(task: str | None = None) -> list[CatalogEntry]:
    """The recommended models (of `task`, or of every task) that are not installed yet."""
    installed = {model.catalog_id for model in installed_models() if model.catalog_id}
    return [
        r.entry
        for r in recommendations(task)
        if r.entry is not None and r.entry.id not in installed
    ]


def set_size(entries: list[CatalogEntry]) -> tuple[int, int]:
    """(bytes the catalog knows for `entries`, how many have no known size)."""
    return sum(e.size or 0 for e in entries), sum(1 for e in entries if not e.size)


def download_recommended(
    task: str | None,
    progress: SetProgress,
    cancelled: Callable[[], bool],
) -> list[InstalledModel]:
    """Download, verify and install the missing recommended models; DownloadCancelled stops it."""
    entries = missing_recommended(task)
    known, unknown = set_size(entries)
    total = None if unknown else known
    finished = 0
    installed = []
    for entry in entries:

        def on_bytes(
            done: int, size: int | None, name: str = entry.name, before: int = finished
        ) -> None:
            if cancelled():
                raise DownloadCancelled(f"Cancelled while getting {name}")
            progress(name, before + done, total)

        installed.append(download(entry.id, on_bytes))
        finished += entry.size or installed[-1].size
    return installed
