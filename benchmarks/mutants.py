"""Mutation testing of the critical modules: would the suite notice a small bug?

    python -m benchmarks.mutants [--modules imageio,jobs] [--max-mutants 20] [--timeout 300]

Each mutant is one small change to one module (a comparison flipped, + for -, a constant
nudged, a function returning its first argument, a call statement removed, `and` for `or`),
made in a private copy of the repository; the module's own tests then run there (stopping at
the first failure). Killed: a test failed or timed out. Survived: every test passed, so a bug
like it would go unnoticed. Prints a table and the survivors, and writes
bench-results/mutants.json. With --max-mutants, an evenly spread, seeded sample per module.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench-results"

CRITICAL: dict[str, tuple[str, list[str]]] = {
    "imageio": ("studio/core/imageio.py", ["tests/core/test_imageio.py"]),
    "exif": ("studio/core/exif.py", ["tests/core/test_imageio.py"]),
    "core_tiling": ("studio/core/tiling.py", ["tests/core/test_tiling.py"]),
    "tiling": (
        "studio/engine/tiling.py",
        ["tests/core/test_tiling.py", "tests/engine/test_device_tiling.py"],
    ),
    "jobs": ("studio/engine/jobs.py", ["tests/engine/test_jobs.py"]),  # input checks too
    "executor": (
        "studio/engine/neural/executor.py",
        ["tests/engine/neural/test_run.py", "tests/engine/neural/test_reference.py"],
    ),
    "inference": (
        "studio/engine/neural/inference.py",
        ["tests/engine/neural/test_run.py", "tests/engine/neural/test_reference.py"],
    ),
    "safeload": (
        "studio/engine/neural/safeload.py",
        ["tests/engine/neural/test_loader.py", "tests/engine/neural/test_torch_archive.py"],
    ),
    "denoise": (
        "studio/engine/ops/denoise.py",
        ["tests/engine/test_denoise.py", "tests/engine/test_beats_trivial.py::test_denoise"],
    ),
    "deblur": (
        "studio/engine/ops/deblur.py",
        ["tests/engine/test_deblur.py", "tests/engine/test_beats_trivial.py::test_deblur"],
    ),
    "inpaint": (
        "studio/engine/ops/inpaint.py",
        ["tests/engine/test_inpaint.py", "tests/engine/test_beats_trivial.py::test_inpaint"],
    ),
    "colorize": (
        "studio/engine/ops/colorize.py",
        ["tests/engine/test_colorize.py", "tests/engine/test_beats_trivial.py::test_colorize"],
    ),
    "hdr": ("studio/engine/ops/hdr.py", ["tests/engine/test_hdr.py"]),
    "style": ("studio/engine/ops/style.py", ["tests/engine/test_style.py"]),
}

_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.And: ast.Or,
    ast.Or: ast.And,
}


@dataclass(frozen=True)
class Mutant:
    line: int
    description: str
    source: str


def _first_argument(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    names = [n for n in names if n not in ("self", "cls")]
    return names[0] if names else None


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    body = getattr(parent, "body", None)
    return isinstance(node, ast.Expr) and bool(body) and body[0] is node  # type: ignore[index]


def _sites(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, kind, description) of every place a mutation applies, in source order."""
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _SWAPS:
                    yield (
                        node,
                        f"compare:{i}",
                        f"{type(op).__name__} -> {_SWAPS[type(op)].__name__}",
                    )
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _SWAPS:
            yield node, "binop", f"{type(node.op).__name__} -> {_SWAPS[type(node.op)].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield node, "boolop", f"{type(node.op).__name__} -> {_SWAPS[type(node.op)].__name__}"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", "not x -> x"
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            yield node, "constant", f"{node.value!r} -> {_tweaked(node.value)!r}"
        elif isinstance(node, ast.Return) and node.value is not None:
            function = _enclosing_function(node, parents)
            if function is not None and _first_argument(function):
                yield node, "return-input", f"return {_first_argument(function)}"
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and not _is_docstring(node, parents.get(node))
        ):
            yield node, "remove-call", f"call to {ast.unparse(node.value.func)} removed"


def _enclosing_function(
    node: ast.AST, parents: dict[ast.AST, ast.AST]
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
        if isinstance(node, ast.Lambda):
            return None
    return None


def _tweaked(value: int | float | bool) -> int | float | bool:
    if isinstance(value, bool):
        return not value
    if value == 0:
        return 1
    return value + 1 if isinstance(value, int) else value * 1.5


def _apply(node: ast.AST, kind: str, function_input: str | None) -> ast.AST:
    """`node` mutated (a copy; the tree keeps the original)."""
    mutated = copy.copy(node)
    if kind.startswith("compare:"):
        assert isinstance(mutated, ast.Compare)
        ops = list(mutated.ops)
        i = int(kind.split(":")[1])
        ops[i] = _SWAPS[type(ops[i])]()
        mutated.ops = ops
    elif kind in ("binop", "boolop"):
        mutated.op = _SWAPS[type(mutated.op)]()  # type: ignore[attr-defined]
    elif kind == "not":
        return node.operand  # type: ignore[attr-defined,no-any-return]
    elif kind == "constant":
        mutated.value = _tweaked(mutated.value)  # type: ignore[attr-defined]
    elif kind == "return-input":
        mutated.value = ast.Name(function_input or "None", ast.Load())  # type: ignore[attr-defined]
    elif kind == "remove-call":
        return ast.Pass()
    return mutated


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST) -> None:
        self.target, self.replacement = target, replacement

    def visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return self.replacement
        return super().visit(node)  # type: ignore[no-any-return]


def mutants(source: str) -> list[Mutant]:
    """Every single-point mutant of `source` that still differs from it once unparsed."""
    original = ast.unparse(ast.parse(source))
    count = sum(1 for _ in _sites(ast.parse(source)))
    found = []
    for index in range(count):
        tree = ast.parse(source)  # a fresh tree per mutant: sites are found in the same order
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        node, kind, description = list(_sites(tree))[index]
        function = _enclosing_function(node, parents)
        replacement = _apply(node, kind, _first_argument(function) if function else None)
        text = ast.unparse(ast.fix_missing_locations(_Replace(node, replacement).visit(tree)))
        if text != original:
            found.append(
                Mutant(getattr(node, "lineno", 0), f"{kind.split(':')[0]}: {description}", text)
            )
    return found


def sample(found: list[Mutant], limit: int | None, seed: int = 0) -> list[Mutant]:
    """At most `limit` mutants spread over the module (seeded), in line order."""
    if limit is None or len(found) <= limit:
        return found
    return sorted(random.Random(seed).sample(found, limit), key=lambda m: m.line)


@dataclass
class Outcome:
    module: str
    line: int
    description: str
    result: str  # killed, survived, timeout


def _copy_repository(target: Path) -> None:
    """The checkout's files (tracked, and new ones git does not ignore) copied to `target`,
    with ../shared beside it when there is one."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    shared = REPO.parent / "shared"
    if shared.exists():
        (target.parent / "shared").symlink_to(shared)


def _run_tests(root: Path, tests: list[str], timeout: float) -> str:
    """'passed', 'failed' or 'timeout' for the tests run in the copy at `root`."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "passed" if done.returncode == 0 else "failed"


def run_module(name: str, root: Path, limit: int | None, timeout: float) -> list[Outcome]:
    relative, tests = CRITICAL[name]
    path = root / relative
    source = path.read_text(encoding="utf-8")
    if _run_tests(root, tests, timeout) != "passed":
        raise SystemExit(f"{name}: its tests fail without any mutation; fix them first")
    outcomes = []
    try:
        for mutant in sample(mutants(source), limit):
            path.write_text(mutant.source, encoding="utf-8")
            status = _run_tests(root, tests, timeout)
            result = {"passed": "survived", "failed": "killed"}.get(status, status)
            outcomes.append(Outcome(name, mutant.line, mutant.description, result))
            print(f"  {name}:{mutant.line} {mutant.description}: {result}", flush=True)
    finally:
        path.write_text(source, encoding="utf-8")
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    rows = [
        f"{'module':<14}{'mutants':>9}{'killed':>8}{'timeout':>9}{'survived':>10}{'killed %':>10}"
    ]
    for module in dict.fromkeys(o.module for o in outcomes):
        mine = [o for o in outcomes if o.module == module]
        rows.append(_row(module, mine))
    rows.append(_row("all", outcomes))
    return "\n".join(rows)


def _row(label: str, outcomes: list[Outcome]) -> str:
    killed = sum(o.result == "killed" for o in outcomes)
    timeouts = sum(o.result == "timeout" for o in outcomes)
    survived = sum(o.result == "survived" for o in outcomes)
    share = 100 * (killed + timeouts) / max(len(outcomes), 1)
    return f"{label:<14}{len(outcomes):>9}{killed:>8}{timeouts:>9}{survived:>10}{share:>9.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", default=",".join(CRITICAL), help="comma-separated names")
    parser.add_argument("--max-mutants", type=int, default=None, help="sample per module")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test run")
    parser.add_argument("--list", action="store_true", help="count mutants per module, run none")
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
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="studio-mutants-") as folder:
        root = Path(folder) / "repo"
        root.mkdir()
        _copy_repository(root)
        for name in names:
            print(f"### {name}", flush=True)
            outcomes += run_module(name, root, args.max_mutants, args.timeout)
    print()
    print(table(outcomes))
    survivors = [o for o in outcomes if o.result == "survived"]
    if survivors:
        print("\nSurvivors (a bug like this would pass the tests):")
        for o in survivors:
            print(f"  {CRITICAL[o.module][0]}:{o.line}  {o.description}")
    RESULTS.mkdir(exist_ok=True)
    report = {
        "seconds": round(time.monotonic() - started),
        "load_average": os.getloadavg(),
        "outcomes": [asdict(o) for o in outcomes],
    }
    (RESULTS / "mutants.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
