"""Running a batch: a generator of events returning a summary. One failing item does not stop
the others; closing the generator cancels at once without leaving a half-written file.
Reading the next input and writing the previous output overlap with the computation, each on
its own single background thread."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.errors import BadInputError, StudioError, UsageError
from studio.core.image import FloatArray, Image
from studio.core.imageio import (
    check_writable,
    read_hints,
    read_image,
    read_mask,
    write_image,
)
from studio.core.paths import (
    refuse_output_among,
    require_regular_file,
)
from studio.core.protocol import (
    INPUT_KINDS,
    InputForm,
    InputKind,
    InputValue,
    JobInputs,
    Progress,
    RunContext,
)
from studio.core.registry import Registry
from studio.core.stored import Result
from studio.engine.batch.journal import ItemStatus, Manifest, stamps
from studio.engine.batch.planning import BatchItem, BatchPlan
from studio.engine.batch.recipes import (
    PreparedStep,
    Recipe,
    input_kinds,
    prepare_recipe,
    run_steps,
)
from studio.engine.jobs import validate_params


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
            "files": stamps([roles[name] for name in sorted(roles)]),
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

    def save(item: BatchItem, result: Result) -> None:
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
                            result: Result = stop.value
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
    if kind.form in (InputForm.MASK, InputForm.REGION):
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
