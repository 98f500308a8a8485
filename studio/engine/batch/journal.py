"""The manifest: a journal in the output folder that gains one synced line as each item ends
(a crash loses at most the items in flight), so a later run with ``resume=True`` skips the
items already done."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.errors import BadInputError, StudioError
from studio.core.imageio import read_image
from studio.core.imageio.writing import temporary_prefix

if TYPE_CHECKING:
    from studio.engine.batch.planning import BatchItem

MANIFEST_NAME = ".studio-batch.jsonl"
_MANIFEST_TMP_PREFIX = ".studio-batch-"
_MANIFEST_TMP_SUFFIX = ".tmp"
_PARTIAL_SUFFIX = ".part"


class ItemStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class Manifest:
    """A journal of what batches produced in one output folder: one JSON line per item.

    A line is appended and synced as each item ends; for the same output the last line wins.
    A line torn by a crash fails to parse and is ignored (the item is simply redone).
    `compact` rewrites the journal atomically with one line per output.
    """

    out_dir: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def path(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """The manifest in `out_dir`; empty when absent (resume then redoes everything)."""
        manifest = cls(out_dir)
        try:
            lines = manifest.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return manifest
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("output"), str):
                    manifest.entries[entry["output"]] = entry
        return manifest

    def _rel(self, item: BatchItem) -> str:
        try:
            return item.output.relative_to(self.out_dir).as_posix()
        except ValueError:
            return str(item.output)

    def is_done(self, item: BatchItem, signature: str) -> bool:
        entry = self.entries.get(self._rel(item))
        return (
            entry is not None
            and entry.get("status") == ItemStatus.DONE.value
            and entry.get("signature") == signature
            and entry.get("inputs") == stamps(item.inputs)
            and _intact(item.output, entry.get("written"))
        )

    def record(self, item: BatchItem, signature: str, status: ItemStatus, reason: str = "") -> None:
        entry: dict[str, Any] = {
            "output": self._rel(item),
            "status": status.value,
            "signature": signature,
            "inputs": stamps(item.inputs),
        }
        if status is ItemStatus.DONE:
            entry["written"] = stamps([item.output])[0][1:]
        if reason:
            entry["reason"] = reason
        with self.lock, self._translating_os_errors():
            self.entries[entry["output"]] = entry
            with self.path.open("a", encoding="utf-8") as journal:
                journal.write(json.dumps(entry) + "\n")
                journal.flush()
                os.fsync(journal.fileno())

    def compact(self) -> None:
        """Rewrite the journal with one line per output, atomically (drops torn lines)."""
        text = "".join(json.dumps(entry) + "\n" for entry in self.entries.values())
        with self._translating_os_errors():
            self.out_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=_MANIFEST_TMP_PREFIX, suffix=_MANIFEST_TMP_SUFFIX, dir=self.out_dir
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    @contextlib.contextmanager
    def _translating_os_errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            reason = err.strerror or str(err)
            raise BadInputError(
                f"Cannot write in the output folder {self.out_dir}: {reason}"
            ) from None

    def remove_stale_temporaries(self, outputs: Iterable[Path]) -> None:
        """Delete the temporary files a killed batch left beside the manifest and `outputs`.

        Only temporaries of this plan's outputs are touched: ``write_image`` writes
        ``.{name}.{random}.part`` beside the target before renaming it.
        """
        names_by_folder: dict[Path, set[str]] = {self.out_dir: set()}
        for output in outputs:
            names_by_folder.setdefault(output.parent, set()).add(temporary_prefix(output.name))
        for folder, names in names_by_folder.items():
            with contextlib.suppress(OSError):
                for path in folder.iterdir():
                    if _is_stale(path.name, names, manifest=folder == self.out_dir):
                        with contextlib.suppress(OSError):
                            path.unlink()


def _is_stale(name: str, outputs: set[str], *, manifest: bool) -> bool:
    if manifest and name.startswith(_MANIFEST_TMP_PREFIX) and name.endswith(_MANIFEST_TMP_SUFFIX):
        return True
    if name.startswith(".") and name.endswith(_PARTIAL_SUFFIX):
        return name[1 : -len(_PARTIAL_SUFFIX)].rsplit(".", 1)[0] in outputs
    return False


def _intact(output: Path, written: Any) -> bool:
    """Whether `output` is as it was `written` ([size, mtime]) or, changed since, still decodes
    (a truncated or damaged output is redone; one retouched elsewhere is kept)."""
    if not output.is_file():
        return False
    if written == stamps([output])[0][1:]:
        return True
    try:
        read_image(output)
    except StudioError:
        return False
    return True


def stamps(paths: Sequence[Path]) -> list[list[Any]]:
    """Each input's path, size and modification time: a changed input is redone."""
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append([str(path), stat.st_size, stat.st_mtime_ns])
        except OSError:
            stamps.append([str(path), None, None])
    return stamps
