"""Batch on a Ray cluster: the same recipe, naming, journal, events and exit codes as a local
batch, each item run on a cluster worker by the code a local batch runs.

The driver checks the recipe, keeps the journal and reports; workers read, run and write.
With shared folders (NFS, SMB: the same paths on every node) a worker reads the inputs and
writes the output itself, atomically. With `ship`, the driver sends each item's files as
bytes and writes the encoded result the worker sends back. A worker keeps its registry and
loaded models between items; a task whose worker or node dies is retried elsewhere by Ray.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError, UsageError
from studio.core.imageio import write_file_atomically, write_image
from studio.core.protocol import RunContext
from studio.core.registry import Registry
from studio.core.stored import Result
from studio.engine.batch import (
    BatchEvent,
    BatchItem,
    BatchPlan,
    BatchSettings,
    BatchSummary,
    ItemFinished,
    ItemStarted,
    ItemStatus,
    Recipe,
    begin_batch,
    check_result_fits,
    fail_item,
    input_kinds,
    prepare_recipe,
    read_item_inputs,
    read_shared_inputs,
    run_steps,
)

LOCAL = "local"
RETRIES = 3  # a task whose worker or node died is run again, elsewhere if need be
TASKS_PER_CPU = 2  # tasks in flight per cluster CPU: workers stay busy, memory stays bounded


def _local(value: Any, files: dict[str, Path]) -> Any:
    return str(files[value]) if isinstance(value, str) and value in files else value


@dataclass(frozen=True)
class ClusterJob:
    """What every worker needs to run the batch's recipe, as plain picklable values."""

    recipe: dict[str, Any]
    extras: dict[str, str]
    region: str | None
    bit_depth: int | None
    quality: int
    max_pixels: int | None
    device: str
    tile: int | None
    precision: str
    model_path: str | None

    def settings(self, files: dict[str, Path] | None = None) -> BatchSettings:
        """The batch settings on this worker; `files` maps shipped paths to local copies."""

        def here(path: str) -> Path:
            return files[path] if files is not None else Path(path)

        recipe = self.recipe
        if files is not None:  # parameters naming a file (a kernel) point at its copy
            steps = [
                {**step, "params": {k: _local(v, files) for k, v in step["params"].items()}}
                for step in recipe["steps"]
            ]
            recipe = {**recipe, "steps": steps}
        return BatchSettings(
            recipe=Recipe.model_validate(recipe),
            extras={name: here(path) for name, path in self.extras.items()},
            region=here(self.region) if self.region else None,
            bit_depth=self.bit_depth,
            quality=self.quality,
            max_pixels=self.max_pixels,
        )


class ItemError(StudioError):
    """An item's failure on a worker, with the exit code it had there."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Outcome:
    """One item's end on a worker: done (with the encoded file when shipped) or failed."""

    index: int
    node: str
    seconds: float
    reason: str = ""
    exit_code: int = 0
    data: bytes | None = None


def run_batch_on_cluster(
    registry: Registry, plan: BatchPlan, settings: BatchSettings, ctx: RunContext
) -> Generator[BatchEvent, None, BatchSummary]:
    """`run_batch` with the items spread over the Ray cluster at `settings.cluster` ('local'
    starts Ray on this machine). Closing the generator cancels the tasks not yet finished; a
    file being written is either complete or absent."""
    assert settings.cluster is not None
    address, ship = settings.cluster, settings.ship
    start = yield from begin_batch(registry, plan, settings, ctx)
    states, started = start.states, time.perf_counter()
    job = _cluster_job(settings, ctx)
    extra_files = [path for _, path in start.others]
    try:
        with _connected(address) as ray:  # leaving it ends the tasks still running
            run_item = ray.remote(process_item).options(
                max_retries=RETRIES, num_cpus=1, num_gpus=_gpus_per_task(ray, start.steps)
            )
            capacity = max(2, TASKS_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))
            waiting, running = list(start.todo), dict[Any, int]()
            while waiting or running:
                while waiting and len(running) < capacity:
                    index = waiting.pop(0)
                    item = plan.items[index]
                    files = _files_of(item, extra_files) if ship else None
                    ref = run_item.remote(job, index, _item_paths(item), files)
                    running[ref] = index
                    states[index].status = ItemStatus.RUNNING
                    yield ItemStarted(index, item)
                (ready,), _ = ray.wait(list(running), num_returns=1)
                index = running.pop(ready)
                yield _record(ray, ready, index, plan.items[index], start, ship)
    finally:
        if not ship:  # a worker stopped while writing leaves its temporary file behind
            start.manifest.remove_stale_temporaries(item.output for item in plan.items)
    return BatchSummary(plan, states, time.perf_counter() - started)


def _record(ray: Any, ref: Any, index: int, item: BatchItem, start: Any, ship: bool) -> BatchEvent:
    """The event for a finished task, the journal updated and, when shipped, the file written."""
    state = start.states[index]
    try:
        outcome: Outcome = ray.get(ref)
        if outcome.exit_code:
            raise ItemError(outcome.reason, outcome.exit_code)
        if ship:
            assert outcome.data is not None
            item.output.parent.mkdir(parents=True, exist_ok=True)
            write_file_atomically(item.output, outcome.data)
        start.manifest.record(item, start.signature, ItemStatus.DONE)
    except Exception as err:  # one bad item must not stop the batch
        return fail_item(index, start.states, _plain(err), start.manifest, start.signature)
    state.status, state.elapsed_s = ItemStatus.DONE, outcome.seconds
    return ItemFinished(index, item, outcome.seconds, node=outcome.node)


def _plain(err: Exception) -> Exception:
    """A Ray error (a task that failed all its retries) as a one-line Studio error."""
    if isinstance(err, StudioError) or type(err).__module__.split(".")[0] != "ray":
        return err
    lines = str(err).strip().splitlines()
    return StudioError(f"The cluster could not run this item: {lines[0] if lines else err}")


def _cluster_job(settings: BatchSettings, ctx: RunContext) -> ClusterJob:
    return ClusterJob(
        recipe=settings.recipe.model_dump(mode="json"),
        extras={name: str(path) for name, path in settings.extras.items()},
        region=str(settings.region) if settings.region else None,
        bit_depth=settings.bit_depth,
        quality=settings.quality,
        max_pixels=settings.max_pixels,
        device=ctx.device,
        tile=ctx.tile,
        precision=ctx.precision,
        model_path=str(ctx.model_path) if ctx.model_path else None,
    )


def _item_paths(item: BatchItem) -> tuple[tuple[str, ...], str]:
    return tuple(str(path) for path in item.inputs), str(item.output)


def _files_of(item: BatchItem, others: list[Path]) -> dict[str, bytes]:
    """The bytes of every file the item reads, by the path the driver knows it by."""
    return {str(path): path.read_bytes() for path in [*item.inputs, *others]}


def _gpus_per_task(ray: Any, steps: list[Any]) -> float:
    uses_device = any(prepared.spec.uses_device for prepared in steps)
    return 1.0 if uses_device and ray.cluster_resources().get("GPU", 0) > 0 else 0.0


@contextlib.contextmanager
def _connected(address: str) -> Iterator[Any]:
    """Ray, connected to the cluster at `address` (or started here for 'local')."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "Running on a cluster needs Ray: install Studio with its 'cluster' extra"
        ) from None
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    try:
        if address == LOCAL:
            ray.init(include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise UsageError(f"Cannot reach the Ray cluster at {address}: {err}") from None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Ray's own notices (retries) are not results
            yield ray
    finally:
        with contextlib.suppress(Exception):  # never hide why the batch is ending
            ray.shutdown()


# ---------------------------------------------------------------------------------------------
# On a worker

_WORKER: dict[str, Any] = {}


def process_item(
    job: ClusterJob,
    index: int,
    paths: tuple[tuple[str, ...], str],
    files: dict[str, bytes] | None,
) -> Outcome:
    """Read, run and write one item on this worker; a failure becomes the outcome's reason."""
    started = time.perf_counter()
    node = _node_name()
    try:
        if files is None:
            _run_and_write(job, [Path(p) for p in paths[0]], Path(paths[1]))
            return Outcome(index, node, time.perf_counter() - started)
        data = _run_shipped(job, paths, files)
        return Outcome(index, node, time.perf_counter() - started, data=data)
    except StudioError as err:
        return Outcome(index, node, 0.0, str(err), err.exit_code)
    except Exception as err:
        return Outcome(index, node, 0.0, f"Unexpected error: {type(err).__name__}: {err}", 1)


def _node_name() -> str:
    """This worker's host and Ray node (several nodes may share a host)."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


def _run_and_write(
    job: ClusterJob, inputs: list[Path], output: Path, files: dict[str, Path] | None = None
) -> None:
    settings = job.settings(files)
    result = _run(job, settings, inputs, output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_image(
        result, output, bit_depth=settings.bit_depth, quality=settings.quality, inputs=inputs
    )


def _run_shipped(
    job: ClusterJob, paths: tuple[tuple[str, ...], str], files: dict[str, bytes]
) -> bytes:
    """Run on local copies of the shipped files and return the encoded result."""
    with tempfile.TemporaryDirectory(prefix="studio-item-") as folder:
        local: dict[str, Path] = {}
        for number, (path, data) in enumerate(files.items()):
            copy = Path(folder, str(number), Path(path).name)
            copy.parent.mkdir()
            copy.write_bytes(data)
            local[path] = copy
        output = Path(folder, "out", Path(paths[1]).name)
        _run_and_write(job, [local[p] for p in paths[0]], output, local)
        return output.read_bytes()


def _run(job: ClusterJob, settings: BatchSettings, inputs: list[Path], output: Path) -> Result:
    registry, ctx = _worker_state(job)
    steps = prepare_recipe(registry, settings.recipe, ctx, given=settings.extras)
    kinds = input_kinds(steps)
    shared = read_shared_inputs(settings, kinds)
    images, region = read_item_inputs(inputs, settings, kinds, shared)
    check_result_fits(output, images, settings.bit_depth, steps)
    work = run_steps(registry, steps, images, ctx, region)
    while True:
        try:
            next(work)
        except StopIteration as stop:
            result: Result = stop.value
            return result


def _worker_state(job: ClusterJob) -> tuple[Registry, RunContext]:
    """The registry and run context this worker keeps between items (models stay loaded)."""
    from studio.engine.registry import build_registry

    if "registry" not in _WORKER:
        _WORKER["registry"] = build_registry()
        _WORKER["ctx"] = RunContext()
    ctx: RunContext = _WORKER["ctx"]
    model = Path(job.model_path) if job.model_path else None
    ctx = replace(ctx, device=job.device, tile=job.tile, precision=job.precision, model_path=model)
    return _WORKER["registry"], ctx
