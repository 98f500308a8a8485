"""Batch processing shared by the CLI and the window's Batch panel (no Qt here).

A batch is a plan (which inputs make which outputs, in a stable order), a recipe (one or more
steps, each a task, an engine and its parameters) and a run. `run_batch` is a generator of
events that returns a summary: one failing item does not stop the others, closing the
generator cancels at once without leaving a half-written file, and a manifest in the output
folder (a journal that gains one synced line as each item ends, so a crash loses at most the
items in flight) lets a later run with ``resume=True`` skip the items already done.

Reading the next input and writing the previous output overlap with the computation, each on
its own single background thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import string
import tempfile
import threading
import time
import tomllib
from collections.abc import Collection, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.core.errors import BadInputError, EngineUnavailableError, StudioError, UsageError
from studio.core.image import FloatArray, Image
from studio.core.imageio import (
    WRITABLE_EXTENSIONS,
    check_writable,
    is_image_file,
    read_hints,
    read_image,
    read_mask,
    write_image,
)
from studio.core.paths import (
    refuse_output_among,
    require_regular_file,
    require_short_name,
    resolved,
)
from studio.core.protocol import (
    BRACKETS,
    INPUT_KINDS,
    EngineSpec,
    InputForm,
    InputKind,
    InputValue,
    JobInputs,
    OpRun,
    Progress,
    RunContext,
)
from studio.core.registry import Registry
from studio.engine.jobs import JobRequest, check_inputs, run_job, validate_params

MANIFEST_NAME = ".studio-batch.jsonl"
DEFAULT_TEMPLATE = "{stem}_{task}"
TEMPLATE_FIELDS = ("stem", "task", "engine")
MAX_TEMPLATE_LENGTH = 100
_MANIFEST_TMP_PREFIX = ".studio-batch-"
_MANIFEST_TMP_SUFFIX = ".tmp"
_PARTIAL_SUFFIX = ".part"


# ---------------------------------------------------------------------------------------------
# Recipes


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
) -> OpRun:
    """Run the steps in order through `run_job`, each on the previous step's result."""
    result = inputs.image
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
        inputs = replace(inputs, images=(result,))
    return result


# ---------------------------------------------------------------------------------------------
# Planning


@dataclass(frozen=True)
class BatchItem:
    """One unit of work: its input files (several for HDR brackets) and its output file."""

    inputs: tuple[Path, ...]
    output: Path

    @property
    def label(self) -> str:
        return self.inputs[0].name if len(self.inputs) == 1 else self.inputs[0].parent.name


@dataclass(frozen=True)
class BatchPlan:
    out_dir: Path
    items: tuple[BatchItem, ...]

    def subset(self, items: Iterable[BatchItem]) -> BatchPlan:
        return BatchPlan(self.out_dir, tuple(items))


def output_suffix(fmt: str | None, source: Path) -> str:
    """The output extension: `fmt` ('png', '.tif'...) or the source's own."""
    suffix = "." + fmt.lower().lstrip(".") if fmt else source.suffix.lower()
    if suffix in WRITABLE_EXTENSIONS:
        return suffix
    if fmt:
        choices = ", ".join(sorted(ext.lstrip(".") for ext in WRITABLE_EXTENSIONS))
        raise UsageError(f"Cannot write {fmt!r} files: use one of {choices}")
    return ".tif"


def check_template(template: str) -> None:
    """Raise `UsageError` unless `template` is a short plain name of known ``{field}``s only."""
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise UsageError(f"The name template is over {MAX_TEMPLATE_LENGTH} characters long")
    try:
        fields = [
            (n, spec, conv)
            for _, n, spec, conv in string.Formatter().parse(template)
            if n is not None
        ]
    except ValueError as err:
        raise UsageError(f"Bad name template {template!r}: {err}") from None
    if any(spec or conversion for _, spec, conversion in fields):
        raise UsageError(f"The name template {template!r} may use {{field}} only, no format")
    unknown = {name for name, _, _ in fields} - set(TEMPLATE_FIELDS)
    if unknown:
        known = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
        raise UsageError(f"Unknown field {sorted(unknown)[0]!r} in the name; use {known}")
    if "/" in template or "\\" in template or not template.strip():
        raise UsageError(f"The name template {template!r} must be a plain file name")


def plan_batch(
    sources: Sequence[Path],
    out_dir: Path,
    *,
    task: str,
    engine: str = "",
    template: str = DEFAULT_TEMPLATE,
    fmt: str | None = None,
    recursive: bool = False,
    group_by_folder: bool = False,
    avoid: Sequence[Path] = (),
) -> BatchPlan:
    """Plan outputs in `out_dir` for the images among `sources` (files and folders).

    Folders contribute their supported images (subfolders too when `recursive`), sorted by
    path; files are taken as given. Outputs mirror the subfolders found by recursion, are named
    from `template` and never equal an input or a file in `avoid` (the mask, kernel...): clashes
    get a suffix ``_2``, ``_3``... With
    `group_by_folder` (HDR brackets) each folder's images form one item named after the folder.
    """
    check_template(template)
    out_dir = resolved(out_dir)
    found = _collect(sources, out_dir, recursive)
    groups: list[tuple[Path, tuple[Path, ...], str]] = []
    if group_by_folder:
        by_folder: dict[Path, list[Path]] = {}
        roots: dict[Path, Path] = {}
        for root, path in found:
            by_folder.setdefault(path.parent, []).append(path)
            roots.setdefault(path.parent, root)
        for folder, paths in by_folder.items():
            rel = folder.parent.relative_to(roots[folder]) if folder != roots[folder] else Path()
            groups.append((rel, tuple(paths), folder.name))
    else:
        groups = [(path.parent.relative_to(root), (path,), path.stem) for root, path in found]
    taken = {_key(path) for _, path in found} | {_key(resolved(path)) for path in avoid}
    items = []
    for rel, inputs, stem in groups:
        name = template.format(stem=stem, task=task, engine=engine)
        suffix = output_suffix(fmt, inputs[0])
        output = out_dir / rel / f"{name}{suffix}"
        counter = 2
        while _key(output) in taken:
            output = out_dir / rel / f"{name}_{counter}{suffix}"
            counter += 1
        taken.add(_key(output))
        require_short_name(output)
        items.append(BatchItem(inputs, output))
    return BatchPlan(out_dir, tuple(items))


def _key(path: Path) -> str:
    """Clash key: the same on case-insensitive file systems too."""
    return os.path.normcase(str(path)).casefold()


def _collect(sources: Sequence[Path], out_dir: Path, recursive: bool) -> list[tuple[Path, Path]]:
    """(root, file) pairs, de-duplicated, in the order given, folders sorted inside."""
    previous_outputs = {_key(out_dir / rel) for rel in Manifest.load(out_dir).entries}
    seen: set[Path] = set()
    found = []
    for source in sources:
        source = resolved(source)
        if source.is_dir():
            pairs = [(source, path) for path in _scan(source, recursive, out_dir)]
            pairs = [p for p in pairs if _key(p[1]) not in previous_outputs]
        elif source.exists():
            pairs = [(source.parent, source)]
        else:
            raise UsageError(f"No such file or folder: {source}")
        for root, path in pairs:
            if path not in seen:
                seen.add(path)
                found.append((root, path))
    return found


def _scan(folder: Path, recursive: bool, out_dir: Path) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    paths = []
    for path in pattern:
        rel = path.relative_to(folder)
        hidden = any(part.startswith(".") for part in rel.parts)
        inside_out_dir = out_dir != folder and path.is_relative_to(out_dir)
        if not hidden and not inside_out_dir and path.is_file() and is_image_file(path):
            paths.append(path)
    return sorted(paths, key=lambda path: path.relative_to(folder).parts)


# ---------------------------------------------------------------------------------------------
# Running


class ItemStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class ItemState:
    item: BatchItem
    status: ItemStatus = ItemStatus.QUEUED
    reason: str = ""
    exit_code: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class ItemStarted:
    index: int
    item: BatchItem


@dataclass(frozen=True)
class ItemProgress:
    index: int
    progress: Progress


@dataclass(frozen=True)
class ItemFinished:
    index: int
    item: BatchItem
    elapsed_s: float
    node: str = ""  # the cluster node that did it


@dataclass(frozen=True)
class ItemFailed:
    index: int
    item: BatchItem
    reason: str
    exit_code: int


@dataclass(frozen=True)
class ItemSkipped:
    index: int
    item: BatchItem
    reason: str


BatchEvent = ItemStarted | ItemProgress | ItemFinished | ItemFailed | ItemSkipped


@dataclass
class BatchSummary:
    plan: BatchPlan
    states: list[ItemState]
    elapsed_s: float = 0.0

    def count(self, status: ItemStatus) -> int:
        return sum(state.status is status for state in self.states)

    def failed_plan(self) -> BatchPlan:
        """The items that failed, to retry them."""
        failed = (s.item for s in self.states if s.status is ItemStatus.FAILED)
        return self.plan.subset(failed)


@dataclass(frozen=True)
class BatchSettings:
    """Everything besides the plan that decides the outputs, and whether to resume."""

    recipe: Recipe
    extras: Mapping[str, Path] = field(default_factory=dict)
    region: Path | None = None
    bit_depth: int | None = None
    quality: int = 95
    max_pixels: int | None = None
    resume: bool = False
    cluster: str | None = None
    """A Ray cluster's address to run the items on ('local' starts Ray here); None: here."""
    ship: bool = False
    """With a cluster: send the files to the workers (they do not see the same folders)."""

    def files_read(self, steps: Sequence[PreparedStep]) -> list[tuple[str, Path]]:
        """(role, path) of every file the job reads besides its images: mask, kernel..."""
        named = [*self.extras.items(), *([("region", self.region)] if self.region else [])]
        files = [(_role(name), path) for name, path in named]
        for prepared in steps:
            params = validate_params(prepared.spec, prepared.step.params)
            files += [(f"{name} file", value) for name, value in params if isinstance(value, Path)]
        return files

    def signature(self, ctx: RunContext) -> str:
        """A digest of what the outputs depend on; resuming reuses only matching outputs."""
        roles = {**self.extras, **({"region": self.region} if self.region else {})}
        settings = {
            "recipe": self.recipe.model_dump(mode="json"),
            "files": _stamps([roles[name] for name in sorted(roles)]),
            "roles": sorted(roles),
            "bit_depth": self.bit_depth,
            "quality": self.quality,
            "model": str(ctx.model_path) if ctx.model_path else None,
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class BatchStart:
    """A batch checked and ready: its steps, the other files it reads, its journal, and the
    items left to do (those a resumed run already finished are skipped)."""

    steps: list[PreparedStep]
    others: list[tuple[str, Path]]
    signature: str
    manifest: Manifest
    states: list[ItemState]
    todo: list[int]


def begin_batch(
    registry: Registry, plan: BatchPlan, settings: BatchSettings, ctx: RunContext
) -> Generator[BatchEvent, None, BatchStart]:
    """Check the recipe and its files (raising `StudioError`), tidy the journal and skip the
    items already done when resuming, yielding `ItemSkipped` for each."""
    steps = prepare_recipe(registry, settings.recipe, ctx, given=settings.extras)
    others = settings.files_read(steps)
    for role, path in others:
        require_regular_file(path, role)
    signature = settings.signature(ctx)
    manifest = Manifest.load(plan.out_dir)
    manifest.remove_stale_temporaries(item.output for item in plan.items)
    manifest.compact()
    states = [ItemState(item) for item in plan.items]
    todo = []
    for index, state in enumerate(states):
        if settings.resume and manifest.is_done(state.item, signature):
            state.status = ItemStatus.SKIPPED
            state.reason = "already done"
            yield ItemSkipped(index, state.item, state.reason)
        else:
            todo.append(index)
    return BatchStart(steps, others, signature, manifest, states, todo)


def run_batch(
    registry: Registry, plan: BatchPlan, settings: BatchSettings, ctx: RunContext
) -> Generator[BatchEvent, None, BatchSummary]:
    """Run `settings.recipe` over the plan, yielding events; returns the summary.

    The recipe is checked before anything runs (raising `StudioError`). Item failures become
    `ItemFailed` events. Closing the generator cancels: the running job stops at its next
    progress step and only an output already being written is finished (atomically).
    With `settings.cluster`, the items run on that Ray cluster instead.
    """
    if settings.cluster:
        from studio.engine.cluster import run_batch_on_cluster

        return (yield from run_batch_on_cluster(registry, plan, settings, ctx))
    start = yield from begin_batch(registry, plan, settings, ctx)
    steps, others, signature, manifest = start.steps, start.others, start.signature, start.manifest
    states, todo, started = start.states, start.todo, time.perf_counter()
    kinds = input_kinds(steps)
    shared = read_shared_inputs(settings, kinds)

    def load(item: BatchItem) -> tuple[JobInputs, FloatArray | None]:
        return read_item_inputs(item.inputs, settings, kinds, shared)

    def save(item: BatchItem, result: Image) -> None:
        refuse_output_among(item.output, [*(("input", p) for p in item.inputs), *others])
        item.output.parent.mkdir(parents=True, exist_ok=True)
        write_image(
            result,
            item.output,
            bit_depth=settings.bit_depth,
            quality=settings.quality,
            inputs=item.inputs,
        )
        manifest.record(item, signature, ItemStatus.DONE)

    reader = ThreadPoolExecutor(1, thread_name_prefix="studio-batch-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="studio-batch-write")
    pending: _PendingWrite | None = None
    try:
        reads = {todo[0]: reader.submit(load, plan.items[todo[0]])} if todo else {}
        for position, index in enumerate(todo):
            state = states[index]
            if position + 1 < len(todo):
                following = todo[position + 1]
                reads[following] = reader.submit(load, plan.items[following])
            state.status = ItemStatus.RUNNING
            yield ItemStarted(index, state.item)
            t0 = time.perf_counter()
            try:
                inputs, region = reads.pop(index).result()
                check_result_fits(state.item.output, inputs, settings.bit_depth, steps)
                with contextlib.closing(run_steps(registry, steps, inputs, ctx, region)) as job:
                    del inputs
                    while True:
                        try:
                            progress = next(job)
                        except StopIteration as stop:
                            result: Image = stop.value
                            break
                        yield ItemProgress(index, progress)
                        if pending and pending.future.done():
                            yield _finish(pending, states, manifest, signature)
                            pending = None
            except Exception as err:  # one bad item must not stop the batch
                yield fail_item(index, states, err, manifest, signature)
                continue
            if pending:
                yield _finish(pending, states, manifest, signature)
            pending = _PendingWrite(index, t0, writer.submit(save, state.item, result))
            del result
        if pending:
            yield _finish(pending, states, manifest, signature)
            pending = None
    finally:
        reader.shutdown(wait=False, cancel_futures=True)
        writer.shutdown(wait=True)
    return BatchSummary(plan, states, time.perf_counter() - started)


def _role(name: str) -> str:
    """How an input file is named in messages: 'style image', 'mask', 'depth file'..."""
    labels = {kind.name: kind.label.lower() for kind in INPUT_KINDS}
    return labels.get(name, "region" if name == "region" else f"{name} file")


def read_shared_inputs(settings: BatchSettings, kinds: Mapping[str, InputKind]) -> dict[str, Image]:
    """The inputs every item shares whatever its size (style, reference...), read once."""
    return {
        name: read_image(path, settings.max_pixels)
        for name, path in settings.extras.items()
        if name in kinds and kinds[name].form is InputForm.IMAGE
    }


def read_item_inputs(
    paths: Sequence[Path],
    settings: BatchSettings,
    kinds: Mapping[str, InputKind],
    shared: Mapping[str, Image],
) -> tuple[JobInputs, FloatArray | None]:
    """Read an item's images, and its masks, hints and region at the first image's size.

    Inputs of kinds no step takes are not read."""
    for path in paths:
        require_regular_file(path, "image")
    images = tuple(read_image(path, settings.max_pixels) for path in paths)
    size = (images[0].height, images[0].width)
    extras: dict[str, InputValue] = dict(shared)
    for name, path in settings.extras.items():
        if name in kinds and name not in extras:
            extras[name] = _read_at_size(kinds[name], path, size)
    region = _read_region(settings.region, size) if settings.region else None
    return JobInputs(images, extras), region


def _read_at_size(kind: InputKind, path: Path, size: tuple[int, int]) -> FloatArray:
    if kind.form is InputForm.MASK:
        mask = read_mask(path, size)
        selected = mask > 0.5  # what the engines taking a mask act on
        if not selected.any():
            raise BadInputError(
                f"The {kind.label.lower()} {path} selects nothing (no white or bright area): "
                "the result would be the photo unchanged"
            )
        if selected.all():
            raise BadInputError(
                f"The {kind.label.lower()} {path} selects the whole picture: "
                "nothing is left to work from"
            )
        return mask
    if kind.form is InputForm.RGBA:
        return read_hints(path, size)
    raise UsageError(f"A {kind.label.lower()} cannot be read from one file")


def _read_region(path: Path, size: tuple[int, int]) -> FloatArray:
    region = read_mask(path, size)
    if region.max() < 1 / 255:
        raise BadInputError(
            f"The region {path} selects nothing (it is black): the result would be the photo "
            "unchanged"
        )
    return region


def unused_inputs(settings: BatchSettings, steps: Sequence[PreparedStep]) -> list[str]:
    """A notice for each input given that no step takes (it is not even read)."""
    kinds = input_kinds(steps)
    engines = " + ".join(f"{prepared.spec.task}/{prepared.spec.id}" for prepared in steps)
    return [
        f"Ignoring the {_role(name)} {path}: {engines} does not use one"
        for name, path in settings.extras.items()
        if name not in kinds
    ]


def check_result_fits(
    output: Path, inputs: JobInputs, bit_depth: int | None, steps: Sequence[PreparedStep]
) -> None:
    """Raise `UsageError` before computing when `output`'s format cannot hold the result.

    The result's size follows each step's `result_size` (upscaling enlarges the photo); when
    a step cannot tell, the size known so far is checked and the writer checks again.
    """
    size: tuple[int, int] = (inputs.image.height, inputs.image.width)
    for prepared in steps:
        if prepared.spec.result_size is None:
            continue
        params = validate_params(prepared.spec, prepared.step.params)
        following = prepared.spec.result_size(size, params)
        if following is None:
            break
        size = following
    check_writable(output, size[1], size[0], bit_depth=bit_depth)


@dataclass(frozen=True)
class _PendingWrite:
    index: int
    started: float
    future: Future[None]


def _finish(
    pending: _PendingWrite, states: list[ItemState], manifest: Manifest, signature: str
) -> BatchEvent:
    try:
        pending.future.result()
    except Exception as err:
        return fail_item(pending.index, states, err, manifest, signature)
    state = states[pending.index]
    state.status = ItemStatus.DONE
    state.elapsed_s = time.perf_counter() - pending.started
    return ItemFinished(pending.index, state.item, state.elapsed_s)


def fail_item(
    index: int, states: list[ItemState], err: Exception, manifest: Manifest, signature: str
) -> ItemFailed:
    """Mark item `index` failed with `err`'s message and exit code, in the state and journal."""
    state = states[index]
    state.status = ItemStatus.FAILED
    if isinstance(err, StudioError):
        state.reason, state.exit_code = str(err), err.exit_code
    else:
        state.reason, state.exit_code = f"Unexpected error: {type(err).__name__}: {err}", 1
    with contextlib.suppress(StudioError):  # the failure itself is what the user must see
        manifest.record(state.item, signature, ItemStatus.FAILED, state.reason)
    return ItemFailed(index, state.item, state.reason, state.exit_code)


# ---------------------------------------------------------------------------------------------
# The manifest


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
            and entry.get("inputs") == _stamps(item.inputs)
            and _intact(item.output, entry.get("written"))
        )

    def record(self, item: BatchItem, signature: str, status: ItemStatus, reason: str = "") -> None:
        entry: dict[str, Any] = {
            "output": self._rel(item),
            "status": status.value,
            "signature": signature,
            "inputs": _stamps(item.inputs),
        }
        if status is ItemStatus.DONE:
            entry["written"] = _stamps([item.output])[0][1:]
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
            names_by_folder.setdefault(output.parent, set()).add(output.name[:200])
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
    if written == _stamps([output])[0][1:]:
        return True
    try:
        read_image(output)
    except StudioError:
        return False
    return True


def _stamps(paths: Sequence[Path]) -> list[list[Any]]:
    """Each input's path, size and modification time: a changed input is redone."""
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append([str(path), stat.st_size, stat.st_mtime_ns])
        except OSError:
            stamps.append([str(path), None, None])
    return stamps


__all__ = [
    "DEFAULT_TEMPLATE",
    "MANIFEST_NAME",
    "BatchEvent",
    "BatchItem",
    "BatchPlan",
    "BatchSettings",
    "BatchStart",
    "BatchSummary",
    "ItemFailed",
    "ItemFinished",
    "ItemProgress",
    "ItemSkipped",
    "ItemStarted",
    "ItemState",
    "ItemStatus",
    "Manifest",
    "PreparedStep",
    "Recipe",
    "RecipeStep",
    "begin_batch",
    "check_result_fits",
    "check_template",
    "fail_item",
    "input_kinds",
    "load_recipe",
    "plan_batch",
    "prepare_recipe",
    "read_item_inputs",
    "read_shared_inputs",
    "run_batch",
    "run_steps",
    "save_recipe",
    "unused_inputs",
]
