"""Which engine a task uses when none is named: the user's pin, else the best installed model.

A catalog entry's `rank` orders the published models of one task (from published figures,
noted in `rank_note`). When a ranked model is installed it becomes its task's default; the user
can pin another engine per task (`studio models default TASK ENGINE`, or the window's Models
panel), kept in `<config dir>/engine-defaults.json`. Naming an engine for one job (`--engine`,
the panel's choice) always wins.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import NamedTuple

from studio.core import paths
from studio.engine.models._catalog import best_rank

PINS_FILE = "engine-defaults.json"


class DefaultChoice(NamedTuple):
    """The engine a task defaults to and why, in words for the user."""

    engine_id: str
    reason: str


def pinned_defaults() -> dict[str, str]:
    """The user's pinned engine per task (an unreadable file counts as no pins)."""
    try:
        data = json.loads((paths.config_dir() / PINS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(task): str(engine) for task, engine in data.items() if isinstance(engine, str)}


def pin_default(task: str, engine_id: str | None) -> None:
    """Pin `engine_id` as `task`'s default, or drop the pin when it is None (atomic write)."""
    pins = pinned_defaults()
    if engine_id is None:
        pins.pop(task, None)
    else:
        pins[task] = engine_id
    folder = paths.config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".pins-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(pins, file, indent=2, sort_keys=True)
        os.replace(temporary, folder / PINS_FILE)
    except BaseException:
        os.unlink(temporary)
        raise


def default_choice(task: str, engine_ids: list[str]) -> DefaultChoice | None:
    """The pinned engine if it is registered, else the best-ranked installed model, else None."""
    pinned = pinned_defaults().get(task)
    if pinned in engine_ids:
        return DefaultChoice(pinned, "you made it the default")
    from studio.engine.models.store import installed_models

    try:
        records = [r for r in installed_models() if r.task == task and r.id in engine_ids]
        by_catalog_id = {r.catalog_id: r for r in records if r.catalog_id}
    except Exception:  # a damaged model store must not keep the registry from building
        return None
    best = best_rank(list(by_catalog_id), task)
    if best is None:
        return None
    engine = by_catalog_id[best.id].id
    return DefaultChoice(
        engine, f"the best installed {task} model (rank {best.rank}: {best.rank_note})"
    )
