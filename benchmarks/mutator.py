"""The mutation benchmark's AST mutator: every single-point change to a module's source.

Each mutant is one small change (a comparison flipped, + for -, a constant nudged, a function
returning its first argument, a call statement removed, `and` for `or`, `not x` for x), made on
the parsed tree and unparsed, so every mutant compiles. Docstrings are never mutated.
"""

from __future__ import annotations

import ast
import copy
import random
from collections.abc import Collection, Iterator
from dataclasses import dataclass

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
    end_line: int
    column: int  # where the mutated node starts on `line`, from 0
    description: str
    source: str
    reach: tuple[int, int] | None = None
    """The lines (its statement's first to the node's last) one of which a test must execute
    for the mutation to act; None when it acts on import (module level, a def's defaults)."""


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
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
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


def _reach(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[int, int] | None:
    """Mutant.reach of `node`: inside a function's body, its statement's lines; else None."""
    statement = node
    while not isinstance(statement, ast.stmt) and statement in parents:
        statement = parents[statement]
    child = node
    while child in parents:
        parent = parents[child]
        in_lambda = isinstance(parent, ast.Lambda) and child is parent.body
        in_def = isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            child is s for s in parent.body
        )
        if in_lambda or in_def:
            last = int(getattr(node, "end_lineno", 0) or getattr(node, "lineno", 0))
            first = int(getattr(statement, "lineno", 0))
            return first, last
        child = parent
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


def mutants(source: str, lines: Collection[int] | None = None) -> list[Mutant]:
    """Every single-point mutant of `source` (on `lines` only, when given) that still differs
    from it once unparsed."""
    original = ast.unparse(ast.parse(source))
    sites = list(_sites(ast.parse(source)))
    found = []
    for index, (site, _, _) in enumerate(sites):
        if lines is not None and getattr(site, "lineno", 0) not in lines:
            continue
        tree = ast.parse(source)  # a fresh tree per mutant: sites are found in the same order
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        node, kind, description = list(_sites(tree))[index]
        function = _enclosing_function(node, parents)
        reach = _reach(node, parents)  # before the tree changes
        replacement = _apply(node, kind, _first_argument(function) if function else None)
        text = ast.unparse(ast.fix_missing_locations(_Replace(node, replacement).visit(tree)))
        if text != original:
            line = getattr(node, "lineno", 0)
            end_line = getattr(node, "end_lineno", None) or line
            column = getattr(node, "col_offset", 0)
            label = f"{kind.split(':')[0]}: {description}"
            found.append(Mutant(line, end_line, column, label, text, reach))
    return found


def sample(found: list[Mutant], limit: int | None, seed: int = 0) -> list[Mutant]:
    """At most `limit` mutants spread over the module (seeded), in line order."""
    if limit is None or len(found) <= limit:
        return found
    return sorted(random.Random(seed).sample(found, limit), key=lambda m: m.line)
