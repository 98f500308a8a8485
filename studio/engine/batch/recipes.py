"""Recipes: steps (a task, an engine, its parameters) read from JSON or TOML, checked before
any work starts, and run in order through `run_job`."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.core.errors import BadInputError, EngineUnavailableError, UsageError
from studio.core.image import FloatArray
from studio.core.paths import (
    require_regular_file,
)
from studio.core.protocol import (
    BRACKETS,
    INPUT_KINDS,
    EngineSpec,
    InputKind,
    JobInputs,
    ResultRun,
    RunContext,
)
from studio.core.registry import Registry
from studio.core.stored import Result, as_image
from studio.engine.jobs import JobRequest, check_inputs, run_job, validate_params


class RecipeStep(BaseModel):
    """One step: a task, optionally a named engine (else the task's default) and parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    engine: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    opacity: float = Field(1.0, ge=0.0, le=1.0, description="Blend of result over the original")


class Recipe(BaseModel):
    """Steps applied in order; each step's result is the next step's input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: list[RecipeStep] = Field(min_length=1)

    @property
    def label(self) -> str:
        """The tasks joined by '+', e.g. 'denoise+deblur' (the `{task}` of output names)."""
        return "+".join(step.task for step in self.steps)


def load_recipe(path: Path) -> Recipe:
    """Read a recipe from JSON or TOML: ``{"steps": [{"task": ..., ...}, ...]}``.

    A JSON file may also hold the list of steps alone.
    """
    require_regular_file(path, "recipe")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise BadInputError(f"Cannot read the recipe {path}: {err.strerror}") from None
    try:
        data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise BadInputError(f"The recipe {path.name} is not valid: {err}") from None
    if isinstance(data, list):
        data = {"steps": data}
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'recipe'}: {e['msg']}" for e in err.errors()
        )
        raise BadInputError(f"The recipe {path.name} is not valid: {problems}") from None


def save_recipe(recipe: Recipe, path: Path) -> None:
    """Write a recipe as JSON (the format `load_recipe` reads back)."""
    path.write_text(recipe.model_dump_json(indent=2, exclude_defaults=True) + "\n", "utf-8")


@dataclass(frozen=True)
class PreparedStep:
    """A recipe step with its engine resolved; its parameters are known to be valid."""

    spec: EngineSpec
    step: RecipeStep


def prepare_recipe(
    registry: Registry,
    recipe: Recipe,
    ctx: RunContext,
    given: Collection[str] = (),
    images: int | None = None,
) -> list[PreparedStep]:
    """Resolve and check every step before any work starts.

    `given` names the kinds of the inputs given besides the photos; `images` is how many
    photos each job gets (None: each set's own count, checked when it runs). Raises
    `UsageError` (unknown task, engine or input, an engine merging several photos after the
    first step, a missing input), `EngineUnavailableError` or `BadInputError` (invalid
    parameters).
    """
    prepared = [PreparedStep(registry.get(step.task, step.engine), step) for step in recipe.steps]
    known = {kind.name for kind in INPUT_KINDS} | set(input_kinds(prepared))
    for name in sorted(set(given) - known):
        raise UsageError(f"No step of this job takes an input called {name!r}")
    for number, step in enumerate(prepared):
        spec = step.spec
        availability = spec.available(ctx)
        if not availability.ok:
            raise EngineUnavailableError(f"{spec.name} is unavailable: {availability.reason}")
        validate_params(spec, step.step.params)
        if spec.merges_images and number > 0:
            raise UsageError(f"{spec.name} takes several images, so it must be the first step")
        several = number == 0 and (spec.merges_images if images is None else images > 1)
        check_inputs(spec, {*given, BRACKETS.name} if several else given)
    return prepared


def input_kinds(steps: Sequence[PreparedStep]) -> dict[str, InputKind]:
    """The kinds of input the steps take besides the photos, by name."""
    return {use.kind.name: use.kind for prepared in steps for use in prepared.spec.inputs}


def merges_images(registry: Registry, recipe: Recipe) -> bool:
    """Whether the recipe's first engine merges several photos (each folder is then one set)."""
    first = recipe.steps[0]
    return registry.get(first.task, first.engine).merges_images


def run_steps(
    registry: Registry,
    steps: Sequence[PreparedStep],
    inputs: JobInputs,
    ctx: RunContext,
    region: FloatArray | None = None,
) -> ResultRun:
    """Run the steps in order through `run_job`, each on the previous step's result (an
    enlargement is converted to float32 only when another step follows it)."""
    result: Result = inputs.image
    for prepared in steps:
        request = JobRequest(
            task=prepared.spec.task,
            inputs=inputs,
            engine=prepared.spec.id,
            params=prepared.step.params,
            opacity=prepared.step.opacity,
            region=region,
        )
        prefix = f"{prepared.spec.task}: " if len(steps) > 1 else ""
        job = run_job(registry, request, ctx)
        try:
            while True:
                try:
                    progress = next(job)
                except StopIteration as stop:
                    result = stop.value
                    break
                yield replace(progress, message=prefix + progress.message)
        finally:
            job.close()
        if prepared is not steps[-1]:
            inputs = replace(inputs, images=(as_image(result),))
    return result
