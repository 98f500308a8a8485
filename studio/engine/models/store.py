"""The user's installed models: a folder of checkpoints plus `index.json` describing each.

A file enters the folder only after it loads (without executing pickled code) and Studio
knows its task. A file matching a catalog checksum takes the catalog's name, licence and
recommended parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.core.errors import BadInputError, ModelError, StudioError
from studio.core.paths import models_dir
from studio.core.protocol import TASKS
from studio.engine.models._catalog import (
    MODEL_SUFFIXES,
    UNKNOWN,
    CatalogEntry,
    Digests,
    ParamValue,
    catalog_entry,
    recognise,
)

INDEX_NAME = "index.json"
LOCK_NAME = "index.lock"
_LOCK_WAIT_S = 60.0
_LOCK_STALE_S = 600.0
_CHUNK = 1 << 20


class InstalledModel(BaseModel):
    """One model in the user's models folder, as recorded in its index."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    task: str
    tasks: tuple[str, ...] = ()
    architecture: str
    file: str
    size: int
    sha256: str
    catalog_id: str | None = None
    licence: str = UNKNOWN
    commercial_use: bool | None = None
    params: dict[str, ParamValue] = Field(default_factory=dict)
    source: str = ""
    imported_at: str = ""
    companions: dict[str, str] = Field(default_factory=dict)
    """Files the model loads from beside itself: file name -> sha256."""

    @property
    def path(self) -> Path:
        return models_dir() / self.file


class ImportResult(NamedTuple):
    """The outcome of importing one file: the model, or the reason it was refused."""

    path: Path
    model: InstalledModel | None
    error: StudioError | None


class VerifyResult(NamedTuple):
    model: InstalledModel
    ok: bool
    reason: str


def file_digests(path: Path) -> Digests:
    """Size, SHA-256, MD5 and git blob id of a file, in one read."""
    size = path.stat().st_size
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            for digest in (sha256, md5, blob):
                digest.update(chunk)
    return Digests(size, sha256.hexdigest(), md5.hexdigest(), blob.hexdigest())


# ---------------------------------------------------------------- index


def _index_path() -> Path:
    return models_dir() / INDEX_NAME


def _read_index() -> list[InstalledModel]:
    path = _index_path()
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [InstalledModel.model_validate(item) for item in data["models"]]
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as err:
        raise ModelError(f"The models index {path} is damaged: {err}") from None


def _write_index(models: list[InstalledModel]) -> None:
    path = _index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"schema": 1, "models": [m.model_dump(mode="json") for m in models]}
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


@contextmanager
def _index_lock() -> Iterator[None]:
    """Serialise index updates between processes (the window, the CLI, the installer)."""
    lock = models_dir() / LOCK_NAME
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            if _stale(lock):
                lock.unlink(missing_ok=True)
            elif time.monotonic() > deadline:
                raise ModelError(f"The models folder is busy (remove {lock} if not)") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _stale(lock: Path) -> bool:
    try:
        return time.time() - lock.stat().st_mtime > _LOCK_STALE_S
    except FileNotFoundError:
        return False


def installed_models() -> list[InstalledModel]:
    """The models in the user's models folder, in import order."""
    return _read_index()


def installed_model(model_id: str) -> InstalledModel:
    """The installed model with this id; BadInputError names the installed ids otherwise."""
    models = _read_index()
    for model in models:
        if model.id == model_id:
            return model
    known = ", ".join(m.id for m in models) or "none"
    raise BadInputError(f"No installed model {model_id!r} (installed: {known})")


# ---------------------------------------------------------------- import


def import_model(path: Path) -> InstalledModel:
    """Copy a checkpoint into the models folder once it loads and its task is known.

    Importing a file that is already installed returns the installed model unchanged.
    Raises BadInputError for a missing path, ModelError (with the reason) for a file
    Studio cannot use.
    """
    return _install(Path(path), move=False)


def import_folder(folder: Path) -> list[ImportResult]:
    """Import every checkpoint file under `folder` (recursively), each on its own."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"Not a folder: {folder}")
    results = []
    for path in sorted(folder.rglob("*")):
        if _is_candidate(path.relative_to(folder), path):
            try:
                results.append(ImportResult(path, import_model(path), None))
            except StudioError as err:
                results.append(ImportResult(path, None, err))
    return results


def _is_candidate(relative: Path, path: Path) -> bool:
    """A model file not hidden, nor inside a hidden folder (such as `.downloads`)."""
    visible = not any(part.startswith(".") for part in relative.parts)
    return visible and path.suffix.lower() in MODEL_SUFFIXES and path.is_file()


def _install(path: Path, *, move: bool) -> InstalledModel:
    if not path.is_file():
        raise BadInputError(f"Model file not found: {path}")
    digests = file_digests(path)
    existing = _installed_copy(digests)
    if existing is not None:
        if move:
            path.unlink()
        return existing
    entry = recognise(digests)
    probe = _probe(path, entry)
    models = _drop_stale_copies(digests, keep=path)
    in_place = path.resolve().parent == models_dir().resolve()
    wanted = entry.file if entry else path.name
    file_name = path.name if in_place else _free_file_name(wanted, digests, models)
    model_id = _free_id(entry.id if entry else _slug(path.stem), digests, models)
    model = _record(path, digests, entry, probe, model_id, file_name)
    if not in_place:
        _place(path, model.path, move=move)
    try:
        with _index_lock():
            others = [m for m in _read_index() if m.sha256 != model.sha256]
            _write_index([*others, model])
    except BaseException:
        if not in_place:
            model.path.unlink(missing_ok=True)
        raise
    return model


def _record(
    path: Path,
    digests: Digests,
    entry: CatalogEntry | None,
    probe: _Probe,
    model_id: str,
    file_name: str,
) -> InstalledModel:
    """The index record of a new model; the catalog, when it knows the file, names it."""
    return InstalledModel(
        id=model_id,
        name=entry.name if entry else path.stem,
        task=probe.task,
        tasks=probe.tasks,
        architecture=probe.architecture,
        file=file_name,
        size=digests.size,
        sha256=digests.sha256,
        catalog_id=entry.id if entry else None,
        licence=entry.licence if entry else UNKNOWN,
        commercial_use=entry.commercial_use if entry else None,
        params=dict(entry.params) if entry else {},
        source=entry.source if entry else str(path.resolve()),
        imported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        companions=_place_companions(probe.companions),
    )


def _installed_copy(digests: Digests) -> InstalledModel | None:
    """The indexed model with these contents (or using them as a companion), when intact."""
    for model in _read_index():
        owns = model.sha256 == digests.sha256 or digests.sha256 in model.companions.values()
        if owns and _intact(model):
            return model
    return None


def _drop_stale_copies(digests: Digests, keep: Path) -> list[InstalledModel]:
    """The index without damaged records of this file's contents (their files deleted)."""
    kept = []
    for model in _read_index():
        if model.sha256 == digests.sha256:
            if model.path.resolve() != keep.resolve():
                model.path.unlink(missing_ok=True)
        else:
            kept.append(model)
    return kept


def _intact(model: InstalledModel) -> bool:
    path = model.path
    return path.is_file() and path.stat().st_size == model.size


class _Probe(NamedTuple):
    task: str
    tasks: tuple[str, ...]
    architecture: str
    companions: list[Path]


def _probe(path: Path, entry: CatalogEntry | None) -> _Probe:
    """Load the file (never executing pickled code) to learn what it is and what it needs."""
    from studio.engine.neural.loader import companion_files, load_model

    try:
        loaded = load_model(path)
    except StudioError:
        raise
    except Exception as err:  # a library failure on a file we do not understand
        reason = f"{type(err).__name__}: {err}"
        raise ModelError(f"{path.name}: could not be loaded ({reason})") from None
    task = entry.task if entry else loaded.task
    if task not in TASKS:
        raise ModelError(f"{path.name}: {loaded.architecture} serves no task Studio has ({task})")
    tasks = (task, *(t for t in loaded.tasks if t != task and t in TASKS))
    return _Probe(task, tasks, loaded.architecture, companion_files(path, loaded.architecture))


def _place_companions(paths: list[Path]) -> dict[str, str]:
    """Copy companion files into the models folder under their own names (the loader's)."""
    placed = {}
    for path in paths:
        sha256 = file_digests(path).sha256
        target = models_dir() / path.name
        if target.exists() and file_digests(target).sha256 != sha256:
            raise ModelError(
                f"A different {path.name} is already installed; remove the model using it first"
            )
        if not target.exists():
            _place(path, target, move=False)
        placed[path.name] = sha256
    return placed


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._") or "model"


def _free_id(wanted: str, digests: Digests, models: list[InstalledModel]) -> str:
    taken = {m.id for m in models}
    return wanted if wanted not in taken else f"{wanted}-{digests.sha256[:8]}"


def _free_file_name(wanted: str, digests: Digests, models: list[InstalledModel]) -> str:
    """`wanted`, unless another model's file (or a stray file) already has that name."""
    taken = {m.file for m in models}
    if wanted not in taken and not (models_dir() / wanted).exists():
        return wanted
    stem, suffix = os.path.splitext(wanted)
    return f"{stem}-{digests.sha256[:8]}{suffix}"


def _place(source: Path, target: Path, *, move: bool) -> None:
    """Put the file at `target` atomically: copy (or move) to a partial name, then rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    try:
        if move:
            shutil.move(source, partial)
        else:
            shutil.copyfile(source, partial)
        os.replace(partial, target)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise ModelError(f"Could not write {target}: {err}") from None


# ---------------------------------------------------------------- verify and remove


def verify() -> list[VerifyResult]:
    """Check every installed file against its index record and its catalog entry."""
    return [VerifyResult(model, *_check(model)) for model in _read_index()]


def _check(model: InstalledModel) -> tuple[bool, str]:
    path = model.path
    if not path.is_file():
        return False, f"file missing: {path}"
    for name, sha256 in model.companions.items():
        companion = models_dir() / name
        if not companion.is_file():
            return False, f"companion file missing: {companion}"
        if file_digests(companion).sha256 != sha256:
            return False, f"companion {name} was changed or is damaged"
    digests = file_digests(path)
    if digests.sha256 != model.sha256:
        return False, "sha256 differs from the index: the file was changed or is damaged"
    entry = catalog_entry(model.catalog_id) if model.catalog_id else None
    if entry is not None:
        mismatch = entry.mismatch(digests)
        if mismatch:
            return False, mismatch
        return True, f"ok (matches catalog {', '.join(c.kind for c in entry.checksums) or 'entry'})"
    return True, "ok"


def remove(model_id: str) -> InstalledModel:
    """Delete an installed model's file and its index record."""
    with _index_lock():
        model = installed_model(model_id)
        remaining = [m for m in _read_index() if m.id != model_id]
        _write_index(remaining)
    model.path.unlink(missing_ok=True)
    still_used = {name for m in remaining for name in m.companions}
    for name in set(model.companions) - still_used:
        (models_dir() / name).unlink(missing_ok=True)
    return model


def model_file(reference: str) -> Path:
    """The file for `--model`: an existing path, an installed id, or an installed catalog id."""
    path = Path(reference).expanduser()
    if path.is_file():
        return path
    for model in _read_index():
        if reference in (model.id, model.catalog_id):
            return model.path
    hint = " (it is in the catalog: install it first)" if catalog_entry(reference) else ""
    raise BadInputError(f"No model file or installed model {reference!r}{hint}")
