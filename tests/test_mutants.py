"""The mutation benchmark's mutator (benchmarks/mutants.py): each mutant is one real change."""

from __future__ import annotations

import ast
import json
import os
import signal

import pytest

from benchmarks.mutant_tests import REPO, LineMap, cpu_seconds
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


def test_a_mutant_in_a_function_runs_only_the_tests_executing_its_statement() -> None:
    test_map = LineMap(
        lines={"a": [3, 4], "b": [10], "c": [4], "d": []},
        seconds={"a": 2.0, "b": 0.5, "c": 1.0, "d": 0.1},
        total_seconds=3.6,
    )
    assert test_map.stages((4, 4)) == [["c", "a"]]
    assert test_map.stages((9, 10)) == [["b"]]
    assert test_map.stages((5, 9)) == []  # no test executes it: it survives unrun
    assert test_map.stages(None) == [["b", "c", "a"], ["d"]]  # on import: every test


def test_reach_is_the_statement_inside_a_function_or_none_on_import() -> None:
    source = "LIMIT = 3\n\ndef f(x, y=4):\n    z = g(\n        x + 1)\n    return z\n"
    reach = {m.description: m.reach for m in mutants(source)}
    assert reach["constant: 3 -> 4"] is None
    assert reach["constant: 4 -> 5"] is None  # a default acts when the def runs, on import
    assert reach["binop: Add -> Sub"] == (4, 5)
    assert reach["return-input: return x"] == (6, 6)


def test_the_time_limit_counts_cpu_time_not_a_loaded_clock() -> None:
    """The limit reads the kernel's CPU counters of the run (with its finished children)."""
    times = os.times()
    own = cpu_seconds(os.getpid(), wall_seconds=1e9)
    assert abs(own - sum(times[:4])) < 0.1
    assert own < 1e9


def test_every_reviewed_equivalent_mutant_still_exists() -> None:
    """An entry whose line, column or mutation no longer occurs is stale: review it again."""
    for module, code, column, description in EQUIVALENT:
        source = (REPO / module).read_text(encoding="utf-8")
        at = [n + 1 for n, line in enumerate(source.splitlines()) if line.strip() == code]
        found = {(m.column, m.description) for m in mutants(source, at)}
        assert (column, description) in found, (module, code)


def test_recheck_runs_the_survivors_again_where_the_module_is_unchanged(
    tmp_path, monkeypatch
) -> None:
    from benchmarks import mutants as bench

    toy = "def f(a, b):\n    b = b\n    return 1 <= a <= b\n"  # a line added since the run
    (tmp_path / "toy.py").write_text(toy, encoding="utf-8")
    code = "return 1 <= a <= b"
    saved = [
        bench.Outcome("toy", 2, "compare: LtE -> Lt", code, "survived", column=11),
        bench.Outcome("toy", 2, "constant: 1 -> 2", code, "survived", column=11),
        bench.Outcome("toy", 2, "return-input: return a", "return a", "survived", column=4),
        bench.Outcome("toy", 2, "constant: 1 -> 2", code, "killed", column=11),
    ]
    monkeypatch.setitem(bench.CRITICAL, "toy", ("toy.py", []))
    monkeypatch.setattr(bench, "_load", lambda: saved)
    monkeypatch.setattr(bench, "map_tests", lambda *_: LineMap({}, {}, 1.0))
    # The new tests kill "1 < a" but not "a < b" (one of the two LtE -> Lt), and "2 <= a".
    verdicts = {"1 < a": "killed", "a < b": "survived", "2 <= a": "killed"}

    def verdict(root, path, mutant, test_map, limit_s):
        return next(v for text, v in verdicts.items() if text in mutant.source)

    monkeypatch.setattr(bench, "_verdict", verdict)
    rechecked = bench.recheck_module("toy", tmp_path, None)
    # both LtE -> Lt share a column: still a survivor; the source line of the third differs
    assert [o.result for o in rechecked] == ["survived", "killed", "survived", "killed"]
    assert [o.line for o in rechecked] == [3, 3, 2, 2]  # found again where the line moved
    assert (tmp_path / "toy.py").read_text(encoding="utf-8").endswith("return 1 <= a <= b\n")


def test_a_run_saves_each_outcome_and_resume_runs_only_the_undecided(tmp_path, monkeypatch) -> None:
    """An interrupted run keeps what it decided; --resume decides only the rest."""
    from benchmarks import mutants as bench

    (tmp_path / "toy.py").write_text("def f(a):\n    return a + 1\n", encoding="utf-8")
    monkeypatch.setitem(bench.CRITICAL, "toy", ("toy.py", []))
    monkeypatch.setattr(bench, "map_tests", lambda *_: LineMap({}, {}, 1.0))
    ran: list[str] = []

    def verdict(root, path, mutant, test_map, limit_s):
        ran.append(mutant.description)
        return "killed"

    monkeypatch.setattr(bench, "_verdict", verdict)
    saves: list[tuple[int, int]] = []
    first = bench.run_module(
        "toy", tmp_path, None, 0, None, save=lambda o, n: saves.append((len(o), n))
    )
    chosen = len(first)
    assert chosen >= 2 and saves == [(k, chosen) for k in range(1, chosen + 1)]
    saved = first[:1]
    saved[0].result = "survived"  # decided earlier; the run then stopped
    monkeypatch.setattr(bench, "_load", lambda: saved)
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    (tmp_path / "mutants.json").write_text("{}", encoding="utf-8")
    ran.clear()
    resumed = bench.run_module("toy", tmp_path, None, 0, None, resume=True)
    assert [o.result for o in resumed] == ["survived"] + ["killed"] * (chosen - 1)
    assert len(ran) == chosen - 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_one_ctrl_c_or_sigterm_stops_the_run_and_keeps_what_it_decided(
    tmp_path, monkeypatch, capsys, signum
) -> None:
    from benchmarks import mutants as bench

    toy = "def f(a):\n    return a + 1 if a > 0 else 2 * a\n"
    monkeypatch.setitem(bench.CRITICAL, "toy", ("toy.py", []))
    monkeypatch.setitem(bench.CRITICAL, "later", ("toy.py", []))
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(bench, "preload", lambda: None)
    monkeypatch.setattr(bench, "copy_repository", lambda root: (root / "toy.py").write_text(toy))
    monkeypatch.setattr(bench, "map_tests", lambda *_: LineMap({}, {}, 1.0))
    monkeypatch.setenv("STUDIO_TEST_SHARED", str(tmp_path / "no-shared"))
    handler = signal.getsignal(signum)
    judged = []

    def verdict(root, path, mutant, test_map, limit_s):
        if len(judged) == 2:  # the signal comes while the third mutant's tests run
            os.kill(os.getpid(), signum)
        judged.append(mutant)
        return "killed"

    monkeypatch.setattr(bench, "_verdict", verdict)
    assert bench.main(["--module", "toy,later"]) == 128 + signum
    saved = json.loads((tmp_path / "results/mutants.json").read_text(encoding="utf-8"))
    assert [o["result"] for o in saved["outcomes"]] == ["killed", "killed"]
    assert saved["runs"]["toy"]["mutants_done"] == 2
    assert "later" not in saved["runs"]  # the modules after it are not started
    printed = capsys.readouterr().out
    assert f"Stopped by {signal.Signals(signum).name}" in printed
    assert "toy: run interrupted after 2 of" in printed
    assert signal.getsignal(signum) is handler
