"""Mutation testing of the critical modules: would the suite notice a small bug?

    python -m benchmarks.mutants [--module jobs,exif] [--sample 40] [--seed 0] [--with-shared]
    python -m benchmarks.mutants --list          # mutants per module, none run
    python -m benchmarks.mutants --survivors     # the saved table and survivors, no run
    python -m benchmarks.mutants --module jobs --recheck   # the saved survivors run again
    python -m benchmarks.mutants --module jobs --resume    # an interrupted run, continued

Each mutant is one small change to one module (benchmarks/mutator.py), made in a private copy
of the repository; the module's tests then run there in a forked pytest (benchmarks/
mutant_tests.py), stopping at the first failure. A mutant inside a function runs the tests that
execute its statement (traced in an unmutated run: set-up, call and tear-down; code run only in
a subprocess is not seen); one acting on import (module constants, defaults) runs them all.
Killed: a test failed, or the run passed its CPU-time limit (several times the unmutated run's).
Survived: every test passed (or none executes it), so a bug like it would go unnoticed.
Equivalent: listed in benchmarks/mutants_equivalent.py with the reason no test can tell it
apart; not run, and left out of the killed share. The tests see no ../shared unless
--with-shared (as on CI).
With --sample N, N mutants per module, a seeded sample spread over the module (deterministic).
Prints a table and the survivors (file:line, mutation, source line); writes
bench-results/mutants.json. --recheck runs only the saved survivors again, against the tests as
they are now (after tests were added for them), and updates their outcomes; a survivor whose
source line changed since is left as it was (run the module again in full). A run saves after
each mutant, so an interrupted one keeps what it decided; --resume runs only the mutants with
no saved outcome (on a loaded machine a whole module can take longer than one sitting).
One Ctrl-C or SIGTERM stops a run at once (the mutant under test is not counted) and prints
what was decided.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.mutant_tests import REPO, LineMap, forked_pytest, map_tests, preload
from benchmarks.mutant_tests import copy_repository as copy_repository
from benchmarks.mutants_equivalent import equivalence
from benchmarks.mutator import Mutant, mutants, sample

RESULTS = REPO / "bench-results"
_CORE = "tests/core/"
_IO_TESTS = [
    _CORE + "test_imageio.py",
    _CORE + "test_writers.py",
    _CORE + "test_metadata_roundtrip.py",
    _CORE + "test_odd_images.py",
    _CORE + "test_modern_formats.py",
    _CORE + "test_reading_edges.py",
    _CORE + "test_writing_edges.py",
]
_NEURAL = "tests/engine/neural/"
_TRIVIAL = "tests/engine/test_beats_trivial.py"
_STREAMED = [  # the upscale engines' stored results, not the models' or the writers'
    "tests/engine/test_upscale_streamed.py::" + test
    for test in (
        "test_detail_stored_rows_equal_the_in_memory_result_quantised",
        "test_lanczos_in_16_bits_agrees_with_float_resizing",
        "test_a_float_photo_stays_float_and_unclipped",
        "test_a_4x_model_asked_for_2x_is_reduced_on_the_way_like_an_area_resize",
        "test_a_2x_model_asked_for_more_is_enlarged_further_by_lanczos",
        "test_memory_grows_by_the_16_bit_output_not_a_float32_result[lanczos-2]",
    )
]
_PROGRESS = "tests/engine/test_engine_progress.py"


def _engine(name: str, *more: str) -> tuple[str, list[str]]:
    return f"studio/engine/ops/{name}.py", [f"tests/engine/test_{name}.py", *more]


CRITICAL: dict[str, tuple[str, list[str]]] = {
    "reading": ("studio/core/imageio/reading.py", _IO_TESTS),
    "writing": ("studio/core/imageio/writing.py", _IO_TESTS),
    "tiff": ("studio/core/imageio/tiff.py", _IO_TESTS),
    "exif": ("studio/core/exif.py", _IO_TESTS),
    "jobs": (
        "studio/engine/jobs.py",
        ["tests/engine/test_jobs.py", "tests/reliability/test_bad_input.py"],
    ),
    "core_tiling": ("studio/core/tiling.py", [_CORE + "test_tiling.py"]),
    "tiling": (
        "studio/engine/tiling.py",
        [_CORE + "test_tiling.py", "tests/engine/test_device_tiling.py"],
    ),
    "executor": (
        "studio/engine/neural/executor.py",
        [
            _NEURAL + "test_run.py",
            _NEURAL + "test_reference.py",
            _NEURAL + "test_memory.py",
            _NEURAL + "test_pipeline.py",
            _NEURAL + "test_precision.py",
            _NEURAL + "test_tile_budget.py",
            _NEURAL + "test_model_cache.py",
            _NEURAL + "test_executor_paths.py",
        ],
    ),
    "inference": (
        "studio/engine/neural/inference.py",
        [
            _NEURAL + "test_run.py",
            _NEURAL + "test_reference.py",
            _NEURAL + "test_precision.py",
            _NEURAL + "test_inference.py",
            _NEURAL + "test_executor_paths.py",
        ],
    ),
    "safeload": (
        "studio/engine/neural/safeload.py",
        [
            _NEURAL + "test_safeload.py",
            _NEURAL + "test_loader.py",
            _NEURAL + "test_torch_archive.py",
            "tests/reliability/test_bad_models.py",
        ],
    ),
    "denoise": _engine(
        "denoise",
        "tests/engine/test_denoise_settings.py",
        _TRIVIAL + "::test_denoise_beats_the_best_gaussian_blur",
        _PROGRESS,
    ),
    "deblur": _engine(
        "deblur",
        "tests/engine/test_deblur_region.py",
        "tests/engine/test_deblur_settings.py",
        _TRIVIAL + "::test_deblur_beats_the_best_unsharp_mask",
        _PROGRESS,
    ),
    "inpaint": _engine(
        "inpaint",
        "tests/engine/test_inpaint_settings.py",
        _TRIVIAL + "::test_inpaint_fills_a_blanked_hole_like_telea_or_better",
        _PROGRESS,
    ),
    "colorize": _engine(
        "colorize",
        _TRIVIAL + "::test_colorize_beats_the_best_spread_of_the_hints",
        _TRIVIAL + "::test_colorize_from_a_reference_beats_a_global_colour_transfer",
    ),
    "hdr": _engine(
        "hdr",
        "tests/engine/test_hdr_settings.py",
        "tests/engine/test_hdr_raw.py",
        _TRIVIAL + "::test_hdr_merge_beats_the_best_single_exposure_and_a_plain_average",
        _TRIVIAL
        + "::test_hdr_fusion_keeps_more_texture_everywhere_than_any_exposure_or_their_average",
    ),
    "style": _engine(
        "style",
        "tests/engine/test_style_settings.py",
        _TRIVIAL + "::test_painterly_takes_the_style_texture_that_colour_matching_cannot",
    ),
    "upscale": _engine("upscale", *_STREAMED, _PROGRESS),
}


@dataclass
class Outcome:
    module: str
    line: int
    description: str
    code: str  # the original source line
    result: str  # killed, timeout, survived, equivalent
    reason: str = ""  # why it is equivalent
    column: int = 0


def _timeout(test_map: LineMap, override: float | None) -> float:
    """Several times the unmutated run's CPU time: a mutant slower than that loops or crawls
    (killed)."""
    return override if override else 30.0 + 4.0 * test_map.total_seconds


def run_module(
    name: str,
    root: Path,
    limit: int | None,
    seed: int,
    timeout: float | None,
    resume: bool = False,
    save: Callable[[list[Outcome], int], None] | None = None,
) -> list[Outcome]:
    """The outcome of each mutant of module `name` (a seeded sample of `limit`, or all), each
    handed to `save` with the number chosen as soon as it is known; with `resume`, a mutant
    whose outcome is saved (same line, column, mutation and source line) is not run again."""
    relative, tests = CRITICAL[name]
    path = root / relative
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    test_map = map_tests(root, Path(relative), tests, timeout or 1800.0)
    limit_s = _timeout(test_map, timeout)
    print(f"  unmutated run {test_map.total_seconds:.0f} s of CPU, {len(test_map.seconds)} tests, "
          f"{len(test_map.by_line)} lines of the module executed; "
          f"limit per mutant {limit_s:.0f} s of CPU", flush=True)  # fmt: skip
    decided = _decided(name) if resume else {}
    chosen = sample(mutants(source), limit, seed)
    outcomes = []
    try:
        for mutant in chosen:
            code = lines[mutant.line - 1].strip() if mutant.line else ""
            outcome = Outcome(name, mutant.line, mutant.description, code, "", "", mutant.column)
            outcome.reason = equivalence(relative, code, mutant.column, mutant.description) or ""
            earlier = decided.get((mutant.line, mutant.column, mutant.description, code), [])
            if outcome.reason:
                outcome.result = "equivalent"
            elif earlier:
                outcome.result = earlier.pop(0).result
            else:
                outcome.result = _verdict(root, path, mutant, test_map, limit_s)
            outcomes.append(outcome)
            where = f"{relative}:{mutant.line}:{mutant.column}"
            print(f"  {where} {mutant.description}: {outcome.result}", flush=True)
            if save:
                save(outcomes, len(chosen))
    finally:
        path.write_text(source, encoding="utf-8")
    return outcomes


def _decided(name: str) -> dict[tuple[int, int, str, str], list[Outcome]]:
    """The saved outcomes of module `name` that a run decided (not reviewed as equivalent)."""
    decided: dict[tuple[int, int, str, str], list[Outcome]] = {}
    for o in _load() if (RESULTS / "mutants.json").exists() else []:
        if o.module == name and o.result != "equivalent":
            decided.setdefault((o.line, o.column, o.description, o.code), []).append(o)
    return decided


def recheck_module(
    name: str,
    root: Path,
    timeout: float | None,
    save: Callable[[list[Outcome]], None] | None = None,
) -> list[Outcome]:
    """The saved outcomes of module `name`, its survivors run again against the current tests
    (all of them handed to `save` after each one).

    A survivor is found again by its source line (where lines above it were added or removed,
    at its new number). Two mutants of one line can share a column and a description
    (``a <= b <= c``); a survivor among such is killed only when all of them are.
    """
    relative, tests = CRITICAL[name]
    path = root / relative
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    saved = [o for o in _load() if o.module == name]
    survivors = [o for o in saved if o.result == "survived"]
    if not survivors:
        return saved
    test_map = map_tests(root, Path(relative), tests, timeout or 1800.0)
    limit_s = _timeout(test_map, timeout)
    try:
        for outcome in survivors:
            where = f"{relative}:{outcome.line}:{outcome.column} {outcome.description}"
            at = [n + 1 for n, line in enumerate(lines) if line.strip() == outcome.code]
            line = outcome.line if outcome.line in at else at[0] if len(at) == 1 else 0
            key = (outcome.column, outcome.description)
            same = [m for m in mutants(source, {line}) if (m.column, m.description) == key]
            if not same:
                print(f"  {where}: the module changed there; run it again in full", flush=True)
                continue
            outcome.line = line  # lines added or removed above it moved it
            verdicts = [_verdict(root, path, mutant, test_map, limit_s) for mutant in same]
            survived = [v for v in verdicts if v == "survived"]
            outcome.result = survived[0] if survived else verdicts[0]
            print(f"  {where}: {outcome.result}", flush=True)
            if save:
                save(saved)
    finally:
        path.write_text(source, encoding="utf-8")
    return saved


def _verdict(root: Path, path: Path, mutant: Mutant, test_map: LineMap, limit_s: float) -> str:
    path.write_text(mutant.source, encoding="utf-8")
    for tests in test_map.stages(mutant.reach):
        status, _ = forked_pytest(root, tests, limit_s)
        if status != "passed":
            return "killed" if status == "failed" else status
    return "survived"


def table(outcomes: list[Outcome]) -> str:
    head = ("module", "mutants", "killed", "timeout", "survived", "equivalent", "killed %")
    rows = [f"{head[0]:<12}" + "".join(f"{h:>11}" for h in head[1:])]
    for module in dict.fromkeys(o.module for o in outcomes):
        rows.append(_row(module, [o for o in outcomes if o.module == module]))
    rows.append(_row("all", outcomes))
    return "\n".join(rows)


def _row(label: str, outcomes: list[Outcome]) -> str:
    counts = [
        sum(o.result == r for o in outcomes)
        for r in ("killed", "timeout", "survived", "equivalent")
    ]
    share = 100 * (counts[0] + counts[1]) / max(len(outcomes) - counts[3], 1)
    cells = [len(outcomes), *counts]
    return f"{label:<12}" + "".join(f"{c:>11}" for c in cells) + f"{share:>10.1f}%"


def survivors_text(outcomes: list[Outcome]) -> str:
    lines = []
    for kind, title in (("survived", "Survivors (a bug like this would pass the tests)"),
                        ("equivalent", "Equivalent (no test can tell them apart)")):  # fmt: skip
        chosen = [o for o in outcomes if o.result == kind]
        if chosen:
            lines.append(f"\n{title}:")
            for o in chosen:
                where = f"{CRITICAL[o.module][0]}:{o.line}:{o.column}"
                lines.append(f"  {where}  {o.description}    | {o.code}")
                if o.reason:
                    lines.append(f"      {o.reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", "--modules", dest="modules", default=",".join(CRITICAL),
                        help="comma-separated names (default: all)")  # fmt: skip
    parser.add_argument("--sample", "--max-mutants", dest="sample", type=int, default=None,
                        help="mutants per module (seeded sample; default: all)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per mutant run")
    parser.add_argument("--with-shared", action="store_true", help="let the tests see ../shared")
    parser.add_argument("--list", action="store_true", help="count mutants per module, run none")
    parser.add_argument("--survivors", action="store_true", help="the last run's survivors")
    parser.add_argument("--recheck", action="store_true",
                        help="run the saved survivors again against the current tests")  # fmt: skip
    parser.add_argument("--resume", action="store_true",
                        help="run only the mutants with no saved outcome")  # fmt: skip
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.modules.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CRITICAL))
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {', '.join(CRITICAL)}")
    if args.list:
        for name in names:
            count = len(mutants((REPO / CRITICAL[name][0]).read_text(encoding="utf-8")))
            print(f"{name:<14}{count:>6}")
        return 0
    if args.survivors:
        outcomes = [o for o in _load() if o.module in names]
        print(table(outcomes) + survivors_text(outcomes) + _unfinished(names))
        return 0
    return _run(names, args)


class Stopped(BaseException):  # not an Exception: no `suppress(Exception)` swallows it
    """The run was asked to stop (Ctrl-C or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _run(names: list[str], args: argparse.Namespace) -> int:
    """Run (or recheck) each module in a private copy; 128 + the signal's number when stopped."""
    started = time.monotonic()
    reached: list[str] = []
    stopped: Stopped | None = None
    try:
        with _stoppable(), tempfile.TemporaryDirectory(prefix="studio-mutants-") as folder:
            root = _copy(Path(folder), args.with_shared)
            for name in names:
                reached.append(name)
                print(f"### {name}", flush=True)
                _module(name, root, args, started)
    except Stopped as stop:
        stopped = stop
    if (RESULTS / "mutants.json").exists():  # every decided mutant is saved at once
        outcomes = [o for o in _load() if o.module in reached]
        print()
        print(table(outcomes) + survivors_text(outcomes) + _unfinished(reached))
    if stopped:
        print(f"\nStopped by {stopped}: the mutants decided before it are saved")
    return 128 + stopped.signum if stopped else 0


def _module(name: str, root: Path, args: argparse.Namespace, started: float) -> None:
    """Run (or recheck) module `name`, its outcomes saved as soon as each is decided."""

    def save(done: list[Outcome], chosen: int | None = None) -> None:
        seconds = round(time.monotonic() - started)
        _save(done, [name], seconds, recheck=args.recheck, of=chosen)

    if args.recheck:
        save(recheck_module(name, root, args.timeout, save))
    else:
        mine = run_module(name, root, args.sample, args.seed, args.timeout, args.resume, save)
        save(mine, len(mine))  # also a module with no mutant chosen


def _copy(folder: Path, with_shared: bool) -> Path:
    """The repository copied into `folder` (libraries imported first); ../shared hidden from
    the tests unless `with_shared`."""
    preload()
    root = (folder / "repo").resolve()
    root.mkdir()
    copy_repository(root)
    if not with_shared:
        os.environ["STUDIO_TEST_SHARED"] = str(folder / "no-shared")
    return root


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _stoppable() -> Iterator[None]:
    """The first Ctrl-C or SIGTERM raises `Stopped` (the run under way is killed on the way
    out); later ones are ignored while the copy is removed. Old handlers come back after."""

    def stop(signum: int, frame: object) -> None:
        for kind in _STOP_SIGNALS:
            signal.signal(kind, signal.SIG_IGN)
        raise Stopped(signum)

    previous = {kind: signal.signal(kind, stop) for kind in _STOP_SIGNALS}
    try:
        yield
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (a save is never cut short)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _unfinished(names: list[str]) -> str:
    """A line for each saved run of `names` that was interrupted before its last mutant."""
    runs = json.loads((RESULTS / "mutants.json").read_text(encoding="utf-8")).get("runs", {})
    lines = [
        f"\n{name}: run interrupted after {run['mutants_done']} of {run['mutants_chosen']} "
        "mutants (--resume runs the rest)"
        for name in names
        if (run := runs.get(name, {})).get("mutants_done", 0) < run.get("mutants_chosen", 0)
    ]
    return "".join(lines)


def _save(
    outcomes: list[Outcome],
    names: list[str],
    seconds: int,
    recheck: bool = False,
    of: int | None = None,
) -> None:
    """bench-results/mutants.json: this run's modules replace their earlier runs, one entry each
    (a recheck is recorded beside the run it updates). A run saves after every mutant, with
    how many of the `of` chosen are done, so an interrupted run keeps them (--resume)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "mutants.json"
    runs = json.loads(path.read_text(encoding="utf-8")).get("runs", {}) if path.exists() else {}
    for name in names:
        run = {
            "command": " ".join(["python -m benchmarks.mutants", *sys.argv[1:]]),
            "seconds": seconds,
            "load_average": os.getloadavg(),
        }
        if of is not None:
            run["mutants_done"], run["mutants_chosen"] = len(outcomes), of
        if recheck:
            runs.setdefault(name, {})["recheck"] = run
        else:
            runs[name] = run
    kept = [o for o in _load() if o.module not in names] if path.exists() else []
    report = {"runs": runs, "outcomes": [asdict(o) for o in kept + outcomes]}
    written = path.with_suffix(f".{os.getpid()}.tmp")  # runs of two modules may save at once
    with _signals_held():
        written.write_text(json.dumps(report, indent=1), encoding="utf-8")
        os.replace(written, path)


def _load() -> list[Outcome]:
    """The saved outcomes; survivors reviewed as equivalent since their run count as such."""
    report = json.loads((RESULTS / "mutants.json").read_text(encoding="utf-8"))
    outcomes = [Outcome(**o) for o in report.get("outcomes", []) if "code" in o]
    for o in outcomes:
        reason = equivalence(CRITICAL[o.module][0], o.code, o.column, o.description)
        if o.result == "survived" and reason:
            o.result, o.reason = "equivalent", reason
    return outcomes


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # at once: tearing torch and Qt down took 7 s at a load of 15
