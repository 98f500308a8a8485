"""The registry of tasks and their engines."""

from __future__ import annotations

from collections.abc import Iterable

from studio.core.errors import UsageError
from studio.core.protocol import TASKS, EngineSpec


class Registry:
    """Engines by task, in registration order; the one marked `default` leads its task."""

    def __init__(self, specs: Iterable[EngineSpec] = ()) -> None:
        self._specs: dict[tuple[str, str], EngineSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: EngineSpec) -> None:
        if spec.task not in TASKS:
            raise ValueError(f"unknown task {spec.task!r}")
        self._specs[(spec.task, spec.id)] = spec

    def tasks(self) -> list[str]:
        return [task for task in TASKS if self.engines(task)]

    def engines(self, task: str) -> list[EngineSpec]:
        specs = [spec for (t, _), spec in self._specs.items() if t == task]
        return sorted(specs, key=lambda spec: not spec.default)

    def get(self, task: str, engine_id: str | None = None) -> EngineSpec:
        """The named engine, or the task's default when `engine_id` is None."""
        if task not in TASKS:
            raise UsageError(f"Unknown task {task!r}. Tasks: {', '.join(TASKS)}")
        if engine_id is None:
            engines = self.engines(task)
            if not engines:
                raise UsageError(f"No engine is registered for {task}")
            return engines[0]
        try:
            return self._specs[(task, engine_id)]
        except KeyError:
            known = ", ".join(spec.id for spec in self.engines(task))
            raise UsageError(f"Unknown engine {engine_id!r} for {task}. Engines: {known}") from None
