"""The `studio` sub-commands: gui, run, batch and engines."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from studio.cli.report import Reporter
from studio.core.errors import BadInputError, UsageError
from studio.core.imageio import WRITABLE_EXTENSIONS, write_image
from studio.core.params import parse_param_pairs
from studio.core.paths import (
    refuse_output_among,
    require_parent_folders,
    require_regular_file,
    require_short_name,
)
from studio.core.protocol import INPUT_KINDS, TASKS, EngineSpec, RunContext, Session
from studio.core.registry import Registry
from studio.core.stored import Result
from studio.engine import registry as engine_registry
from studio.engine.batch import (
    BatchSettings,
    ItemFailed,
    ItemFinished,
    ItemProgress,
    ItemSkipped,
    ItemStarted,
    ItemStatus,
    PreparedStep,
    Recipe,
    RecipeStep,
    check_result_fits,
    input_kinds,
    load_recipe,
    merges_images,
    plan_batch,
    prepare_recipe,
    read_item_inputs,
    read_shared_inputs,
    run_batch,
    run_steps,
    unused_inputs,
)
from studio.engine.jobs import validate_params
from studio.engine.models import model_file

MODEL_ENGINE = "model"
_QT_PACKAGES = ("PySide6", "shiboken6", "superqt", "qtawesome")


def launch_gui(files: Sequence[str]) -> int:
    """Open the window in this process (imported dynamically: the CLI never imports the UI)."""
    try:
        app = importlib.import_module("studio.ui.app")
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if err.name in ("studio.ui.app", "studio.ui"):
            print("studio: the window is not part of this installation", file=sys.stderr)
            return 1
        if top in _QT_PACKAGES:
            print(
                f"studio: the window needs {top}, which is not installed; "
                "reinstall Studio with ./installer/install.sh",
                file=sys.stderr,
            )
            return 1
        raise
    return int(app.run([str(Path(f)) for f in files]))


# ---------------------------------------------------------------------------------------------
# run


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    registry = engine_registry.build_registry()
    ctx = _context(args)
    inputs = [Path(p) for p in args.inputs]
    output = Path(args.output)
    step = RecipeStep(
        task=args.task,
        engine=_engine(args),
        params=parse_param_pairs(args.param),
        opacity=args.opacity,
    )
    recipe = Recipe(steps=[step])
    settings = _settings(args, recipe)
    steps = _prepare(registry, settings, ctx, args, cli_params=True, images=len(inputs))
    spec = steps[0].spec
    _check_run_paths(inputs, output, settings.files_read(steps))
    kernel_path = _kernel_path(args, [*inputs, output, *(p for _, p in settings.files_read(steps))])
    for notice in unused_inputs(settings, steps):
        reporter.note(notice)
    kinds = input_kinds(steps)
    shared = read_shared_inputs(settings, kinds)
    started = time.perf_counter()
    job_inputs, region = read_item_inputs(inputs, settings, kinds, shared)
    check_result_fits(output, job_inputs, args.bit_depth, steps)
    job = run_steps(registry, steps, job_inputs, ctx, region)
    del job_inputs
    try:
        while True:
            try:
                progress = next(job)
            except StopIteration as stop:
                result: Result = stop.value
                break
            reporter.progress(progress.done, progress.total, progress.message)
    finally:
        job.close()
    with _sigint_deferred():
        written = write_image(
            result, output, bit_depth=args.bit_depth, quality=args.quality, inputs=inputs
        )
        if kernel_path is not None:
            _save_kernel(ctx, kernel_path)
    elapsed = time.perf_counter() - started
    device = _device_name(spec, ctx)
    reporter.result(
        f"Wrote {written} ({spec.task}/{spec.id} on {device}, {elapsed:.1f} s)"
        + _report_text(ctx.report),
        event="done",
        output=str(written),
        engine=spec.id,
        device=device,
        tile=ctx.tile,
        elapsed_s=round(elapsed, 3),
        **{key: value for key, value in ctx.report.items() if key != "kernel"},
    )
    return 0


def _kernel_path(args: argparse.Namespace, taken: Sequence[Path]) -> Path | None:
    """Where to write the estimated kernel: never over a file the job reads or writes."""
    if not args.save_kernel:
        return None
    path = Path(args.save_kernel)
    if path.suffix.lower() not in (".png", ".npy"):
        raise UsageError(f"Cannot write the kernel to {path.name}: use .png or .npy")
    if any(path.resolve() == Path(other).resolve() for other in taken):
        raise UsageError(f"The kernel file {path} is an input or the output: choose another name")
    return path


def _save_kernel(ctx: RunContext, path: Path) -> None:
    """Write the estimated kernel, if any; `kernel_file` in the report says which it was."""
    from studio.engine.psf import save_kernel

    kernel = ctx.report.get("kernel")
    if kernel is not None:
        save_kernel(kernel, path)
    ctx.report["kernel_file"] = str(path) if kernel is not None else None


def _report_text(report: dict[str, Any]) -> str:
    """What the engine reported, for the final line."""
    size = report.get("kernel_size")
    text = f"; blur kernel {size[0]}x{size[1]} px" if size else ""
    if "kernel_file" in report:
        saved = report["kernel_file"]
        text += f", saved to {saved}" if saved else "; no kernel estimated, none saved"
    return text


def _context(args: argparse.Namespace) -> RunContext:
    """The job's context in a session of the options; `--model` takes a file, an installed
    model's id or an installed catalog id."""
    model = model_file(args.model) if args.model else None
    return Session(device=args.device, tile=args.tile, precision=args.precision).context(model)


def _prepare(
    registry: Registry,
    settings: BatchSettings,
    ctx: RunContext,
    args: argparse.Namespace,
    *,
    cli_params: bool,
    images: int | None = None,
) -> list[PreparedStep]:
    """Check the job before reading any image.

    Parameters typed on the command line are usage errors (exit 2) when wrong; those read
    from a recipe file are bad input (exit 3).
    """
    recipe = settings.recipe
    for step in recipe.steps if cli_params else ():
        spec = registry.get(step.task, step.engine)
        try:
            validate_params(spec, step.params)
        except BadInputError as err:
            known = ", ".join(spec.params.model_fields) or "none"
            raise UsageError(f"{err} (parameters of {spec.id}: {known})") from None
    return prepare_recipe(registry, recipe, ctx, given=settings.extras, images=images)


def _engine(args: argparse.Namespace) -> str | None:
    """The engine asked for; a `--model` alone means the model engine, not the default."""
    return args.engine or (MODEL_ENGINE if args.model else None)


def _check_run_paths(
    inputs: Sequence[Path], output: Path, others: Sequence[tuple[str, Path]]
) -> None:
    if output.suffix.lower() not in WRITABLE_EXTENSIONS:
        choices = ", ".join(sorted(WRITABLE_EXTENSIONS))
        raise UsageError(f"Cannot write {output.name}: use one of {choices}")
    require_short_name(output)
    files = [("input", path) for path in inputs] + list(others)
    refuse_output_among(output, files)
    if output.is_dir():
        raise UsageError(f"Cannot write {output}: it is a folder")
    require_parent_folders(output)
    for role, path in files:
        require_regular_file(path, role)


def _settings(args: argparse.Namespace, recipe: Recipe, resume: bool = False) -> BatchSettings:
    return BatchSettings(
        recipe=recipe,
        extras=_input_files(args),
        region=_path(args.region),
        bit_depth=args.bit_depth,
        quality=args.quality,
        max_pixels=args.max_pixels,
        resume=resume,
        cluster=getattr(args, "cluster", None),
        ship=getattr(args, "ship", False),
    )


def _input_files(args: argparse.Namespace) -> dict[str, Path]:
    """The inputs besides the photos by kind name: ``--mask FILE``... and ``--input NAME=FILE``."""
    files = {
        kind.name: Path(getattr(args, kind.name))
        for kind in INPUT_KINDS
        if getattr(args, kind.name, None)
    }
    for pair in args.input:
        name, _, file = pair.partition("=")
        if not name or not file:
            raise UsageError(f"--input takes NAME=FILE, not {pair!r}")
        files[name] = Path(file)
    return files


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _device_name(spec: EngineSpec, ctx: RunContext) -> str:
    """Where the engine ran, as its declaration says: the compute device or the CPU."""
    if not spec.uses_device:
        return "cpu"
    from studio.engine.device import resolve_device

    return resolve_device(ctx.device).type


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Let an atomic write finish even if Ctrl-C arrives during it; the job is then complete."""
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    except ValueError:  # not the main thread: signals go elsewhere anyway
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------------------------
# batch


def batch(args: argparse.Namespace, reporter: Reporter) -> int:
    registry = engine_registry.build_registry()
    ctx = _context(args)
    recipe, sources = _batch_recipe(args)
    if args.ship and not args.cluster:
        raise UsageError("--ship sends files to a cluster's workers: give --cluster ADDRESS too")
    settings = _settings(args, recipe, resume=args.resume)
    steps = _prepare(registry, settings, ctx, args, cli_params=args.recipe is None)
    for notice in unused_inputs(settings, steps):
        reporter.note(notice)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"Cannot write into {out_dir}: it is a file, not a folder")
    require_parent_folders(out_dir)
    others = [path for _, path in settings.files_read(steps)]
    plan = plan_batch(
        sources,
        out_dir,
        task=recipe.label,
        engine="+".join(step.spec.id for step in steps),
        template=args.name,
        fmt=args.format,
        recursive=args.recursive,
        group_by_folder=merges_images(registry, recipe),
        avoid=[*others, *([Path(args.recipe)] if args.recipe else [])],
    )
    if not plan.items:
        raise BadInputError("No supported images found in the inputs")
    total = len(plan.items)
    finished = 0
    labels = {index: item.label for index, item in enumerate(plan.items)}
    events = run_batch(registry, plan, settings, ctx)
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                summary = stop.value
                break
            finished += isinstance(event, ItemFinished | ItemFailed | ItemSkipped)
            _report_batch_event(reporter, event, total, finished, labels)
    finally:
        events.close()
    failures = [s for s in summary.states if s.status is ItemStatus.FAILED]
    counts = {status.value: summary.count(status) for status in ItemStatus}
    reporter.result(
        f"Batch: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped "
        f"of {total} in {summary.elapsed_s:.1f} s -> {plan.out_dir}",
        event="summary",
        total=total,
        done=counts["done"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        elapsed_s=round(summary.elapsed_s, 3),
        out_dir=str(plan.out_dir),
        failures=[{"input": str(s.item.inputs[0]), "reason": s.reason} for s in failures],
    )
    return failures[0].exit_code if failures else 0


def _batch_recipe(args: argparse.Namespace) -> tuple[Recipe, list[Path]]:
    """The recipe (from TASK and options, or from --recipe) and the input paths."""
    items = list(args.items)
    if args.recipe is None:
        task = items.pop(0)
        if not items:
            raise UsageError("Give the task, then at least one input file or folder")
        if task not in TASKS:
            raise UsageError(f"Unknown task {task!r}. Tasks: {', '.join(TASKS)}")
        step = RecipeStep(
            task=task,
            engine=_engine(args),
            params=parse_param_pairs(args.param),
            opacity=args.opacity,
        )
        return Recipe(steps=[step]), [Path(item) for item in items]
    if args.engine or args.param or args.opacity != 1.0:
        raise UsageError("With --recipe, put engines, parameters and opacity in the recipe")
    if items and items[0] in TASKS and not Path(items[0]).exists():
        raise UsageError("Give either a TASK or --recipe, not both")
    return load_recipe(Path(args.recipe)), [Path(item) for item in items]


def _report_batch_event(
    reporter: Reporter, event: Any, total: int, finished: int, labels: dict[int, str]
) -> None:
    if isinstance(event, ItemProgress):
        p = event.progress
        if reporter.machine:
            reporter.progress(p.done, p.total, p.message, index=event.index)
        else:
            step = f" {p.done}/{p.total}" if p.total > 1 else ""
            message = f"{labels[event.index]}: {p.message}{step}"
            reporter.progress(finished, total, message, unit="image")
        return
    item = event.item
    fields: dict[str, Any] = {
        "index": event.index,
        "input": str(item.inputs[0]),
        "inputs": [str(path) for path in item.inputs],
        "output": str(item.output),
    }
    if isinstance(event, ItemStarted):
        reporter.event("started", "", total=total, **fields)
        if not reporter.machine:
            reporter.progress(finished, total, labels[event.index], unit="image")
    elif isinstance(event, ItemFinished):
        node = {"node": event.node} if event.node else {}
        reporter.event("finished", "", elapsed_s=round(event.elapsed_s, 3), **node, **fields)
    elif isinstance(event, ItemSkipped):
        reporter.event("skipped", "", reason=event.reason, **fields)
    elif isinstance(event, ItemFailed):
        text = f"failed: {labels[event.index]}: {event.reason}"
        reporter.event("failed", text, reason=event.reason, exit_code=event.exit_code, **fields)


# ---------------------------------------------------------------------------------------------
# engines


def engines(args: argparse.Namespace, reporter: Reporter) -> int:
    registry = engine_registry.build_registry()
    ctx = RunContext()
    tasks = [args.task] if args.task else registry.tasks()
    listing = {task: [_describe(spec, ctx) for spec in registry.engines(task)] for task in tasks}
    if args.json:
        entries = [{"task": task, "engines": infos} for task, infos in listing.items()]
        print(json.dumps({"tasks": entries}), flush=True)
        return 0
    for task, infos in listing.items():
        print(task)
        if not infos:
            print("  (no engine yet)")
        for info in infos:
            print(_engine_line(info))
            for name, field in info["params"].get("properties", {}).items():
                print(_param_line(name, field))
    return 0


def _describe(spec: EngineSpec, ctx: RunContext) -> dict[str, Any]:
    availability = spec.available(ctx)
    return {
        "id": spec.id,
        "name": spec.name,
        "kind": spec.kind.value,
        "default": spec.default,
        "default_reason": default_reason(spec),
        "available": availability.ok,
        "reason": availability.reason,
        "description": spec.description,
        "params": spec.params.model_json_schema(),
    }


def default_reason(spec: EngineSpec) -> str:
    """Why `spec` is its task's default ("" when it is not)."""
    if not spec.default:
        return ""
    return spec.default_reason or "Studio's built-in default (no ranked model installed)"


def _engine_line(info: dict[str, Any]) -> str:
    mark = "*" if info["default"] else " "
    state = "available" if info["available"] else f"unavailable: {info['reason']}"
    line = f"  {mark} {info['id']:<16} {info['name']} ({info['kind']}) - {state}"
    if info["default"]:
        line += f"\n      default: {info['default_reason']}"
    return line


def _param_line(name: str, field: dict[str, Any]) -> str:
    bounds = [
        f"{op} {field[key]}" for key, op in (("minimum", ">="), ("maximum", "<=")) if key in field
    ]
    limits = f" [{', '.join(bounds)}]" if bounds else ""
    default = f" = {json.dumps(field['default'])}" if "default" in field else ""
    return f"      {name}{default}{limits}  {field.get('description', '')}".rstrip()
