"""The mutation benchmark's mutator (benchmarks/mutants.py): each mutant is one real change."""

from __future__ import annotations

import ast

from benchmarks.mutant_tests import REPO, LineMap
from benchmarks.mutants_equivalent import EQUIVALENT
from benchmarks.mutator import mutants, sample

SOURCE = '''
def clip(pixels, low):
    """Docstrings are never mutated."""
    if pixels < low and low >= 0:
        return low + 1
    log(pixels)
    return not pixels
'''


def test_each_mutant_changes_one_thing_and_compiles() -> None:
    found = mutants(SOURCE)
    kinds = sorted(m.description.split(":")[0] for m in found)
    assert kinds == sorted(
        ["compare", "compare", "boolop", "binop", "constant", "constant", "return-input",
         "return-input", "remove-call", "not"]
    )  # fmt: skip
    original = ast.unparse(ast.parse(SOURCE))
    for mutant in found:
        compile(mutant.source, "mutant", "exec")
        assert mutant.source != original
        assert "Docstrings are never mutated." in mutant.source


def test_specific_mutations() -> None:
    by_description = {m.description: m.source for m in mutants(SOURCE)}
    assert "pixels <= low" in by_description["compare: Lt -> LtE"]
    assert "return low - 1" in by_description["binop: Add -> Sub"]
    assert "log(pixels)" not in by_description["remove-call: call to log removed"]
    assert by_description["not: not x -> x"].endswith("return pixels")
    assert "low >= 1" in by_description["constant: 0 -> 1"]


def test_sample_is_seeded_spread_and_bounded() -> None:
    found = mutants(SOURCE)
    chosen = sample(found, 4)
    assert len(chosen) == 4 and chosen == sample(found, 4)
    assert [m.line for m in chosen] == sorted(m.line for m in chosen)
    assert sample(found, None) == found


def test_tests_executing_the_mutated_lines_run_first_fastest_first() -> None:
    test_map = LineMap(
        lines={"a": [3, 4], "b": [10], "c": [4], "d": []},
        seconds={"a": 2.0, "b": 0.5, "c": 1.0, "d": 0.1},
        total_seconds=3.6,
    )
    assert test_map.stages(4, 4) == [["c", "a"], ["d", "b"]]
    assert test_map.stages(9, 10) == [["b"], ["d", "c", "a"]]
    assert test_map.stages(5, 9) == [["d", "b", "c", "a"]]


def test_every_reviewed_equivalent_mutant_still_exists() -> None:
    """An entry whose line, column or mutation no longer occurs is stale: review it again."""
    for module, code, column, description in EQUIVALENT:
        source = (REPO / module).read_text(encoding="utf-8")
        at = [n + 1 for n, line in enumerate(source.splitlines()) if line.strip() == code]
        found = {(m.column, m.description) for m in mutants(source, at)}
        assert (column, description) in found, (module, code)
