"""Running a module's tests against a mutant, fast: forked pytest runs, tests ordered to fail early.

The parent process imports the heavy third-party libraries once (never `studio` or the tests), and
each run is a forked child that imports the repository copy's code afresh, so a run costs the
tests, not the interpreter's start. A first, traced run records which tests execute which lines
of the module and how long each test takes; each mutant then runs the tests that execute its
lines first (fastest first) and, only if they all pass, the rest; each stops at its first failure.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PRELOADED = (
    "pytest", "PySide6.QtCore", "numpy", "scipy.sparse", "scipy.ndimage", "scipy.fft", "cv2",
    "PIL.Image", "pydantic", "tifffile", "torch", "spandrel", "skimage", "safetensors",
)  # fmt: skip
"""Imported once by the parent so that no forked run pays for them again; in the order a
normal run imports them (PySide6's import hook must come before pydantic's lazy imports)."""


def preload() -> None:
    for name in PRELOADED:
        with suppress(ImportError):
            importlib.import_module(name)


def _library_modules(root: Path) -> list[str]:
    """The modules imported so far, in import order, that are not the repository's own."""
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and not Path(path).is_relative_to(root) and not Path(path).is_relative_to(REPO):
            names.append(name)
    return names


def import_libraries(names: list[str]) -> None:
    """Import in the parent what the tests imported (in their order), for later runs to share."""
    for name in names:
        if name not in sys.modules and not name.startswith(("__main__", "conftest")):
            with suppress(Exception):
                importlib.import_module(name)


def copy_repository(target: Path) -> None:
    """The checkout's files (tracked, and new ones git does not ignore) copied to `target`."""
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


def run_tests(root: Path, tests: list[str], timeout: float) -> str:
    """'passed', 'failed' or 'timeout' for the tests run in a fresh interpreter in `root`."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "passed" if done.returncode == 0 else "failed"


class LineRecorder:
    """A pytest plugin: the lines of one file each test executes, and each test's duration."""

    def __init__(self, root: Path, target: Path, output: Path) -> None:
        self.root, self.target, self.output = root, str(root / target), output
        self.lines: set[int] = set()
        self.by_test: dict[str, list[int]] = {}
        self.seconds: dict[str, float] = {}
        self.failed: list[str] = []

    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        return self._line if frame.f_code.co_filename == self.target else None

    def _line(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines.add(frame.f_lineno)
        return self._line

    @contextmanager
    def _traced(self, item: Any) -> Iterator[None]:
        self.lines = set(self.by_test.get(item.nodeid, []))
        sys.settrace(self._call)
        threading.settrace(self._call)
        try:
            yield
        finally:
            sys.settrace(None)
            threading.settrace(None)
            self.by_test[item.nodeid] = sorted(self.lines)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: Any) -> Iterator[None]:
        with self._traced(item):
            yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: Any) -> Iterator[None]:
        with self._traced(item):
            yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: Any) -> Iterator[None]:
        with self._traced(item):
            yield

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.append(report.nodeid)

    def pytest_sessionfinish(self) -> None:
        data = {
            "lines": self.by_test,
            "seconds": self.seconds,
            "failed": self.failed,
            "modules": _library_modules(self.root),
        }
        self.output.write_text(json.dumps(data), encoding="utf-8")


@dataclass
class LineMap:
    """Which tests execute which lines of the module, and how long each test takes."""

    lines: dict[str, list[int]]
    seconds: dict[str, float]
    total_seconds: float  # CPU time of the whole unmutated run
    by_line: dict[int, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for test, lines in self.lines.items():
            for line in lines:
                self.by_line.setdefault(line, set()).add(test)

    def stages(self, reach: tuple[int, int] | None) -> list[list[str]]:
        """The tests to run against a mutant, in stages, each fastest first. A mutant that acts
        on import (`reach` None) may change any test: those executing no line of the module
        come after the others. One inside a function acts only where a test executes its
        lines (`reach`): only those tests run, none when no test does."""
        fastest = sorted(self.seconds, key=lambda test: (self.seconds[test], test))
        if reach is None:
            executing = {test for test, lines in self.lines.items() if lines}
            stages = (
                [t for t in fastest if t in executing],
                [t for t in fastest if t not in executing],
            )
            return [stage for stage in stages if stage]
        first, last = reach
        covering = set().union(*(self.by_line.get(n, set()) for n in range(first, last + 1)))
        return [[t for t in fastest if t in covering]] if covering else []


@contextmanager
def _silenced() -> Iterator[None]:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    yield


def forked_pytest(
    root: Path, args: list[str], timeout: float, plugin: Any = None, first_failure: bool = True
) -> tuple[str, float]:
    """('passed', 'failed' or 'timeout', CPU seconds used): pytest run in a forked child on the
    copy at `root`. The limit is on the child's CPU time, so that a loaded machine does not
    turn a slow run into a timeout; a child that uses no CPU for minutes ends too."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 99
        try:
            os.setpgid(0, 0)
            os.chdir(root)
            sys.path[:] = [str(root)] + [p for p in sys.path if p not in ("", str(REPO))]
            os.environ["PYTHONPATH"] = str(root)
            sys.dont_write_bytecode = True
            with _silenced():
                stop = ["-x"] if first_failure else []
                command = ["-q", *stop, "-p", "no:cacheprovider", *args]
                code = int(pytest.main(command, plugins=[plugin] if plugin else []))
        finally:
            os._exit(code)
    started = progressed = time.monotonic()
    used = 0.0
    try:
        while used <= timeout and time.monotonic() - progressed < _STALL_SECONDS:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                pid = 0
                used = usage.ru_utime + usage.ru_stime
                return ("passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"), used
            now = cpu_seconds(pid, time.monotonic() - started)
            if now > used:
                used, progressed = now, time.monotonic()
            time.sleep(0.05)
        return "timeout", used
    finally:  # past the limit, or the benchmark itself stopped: the run and its children end
        if pid:
            for kill in (os.killpg, os.kill):
                with suppress(ProcessLookupError):
                    kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


_STALL_SECONDS = 300.0  # a run that used no CPU for this long is stuck (a deadlock, a sleep)


def cpu_seconds(pid: int, wall_seconds: float) -> float:
    """CPU time used so far by process `pid` and its finished children (Linux); elsewhere the
    wall-clock time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return wall_seconds
    ticks = sum(int(n) for n in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def map_tests(root: Path, module: Path, tests: list[str], timeout: float) -> LineMap:
    """The traced, unmutated run. Tests that fail in it are left out of the mutant runs (and
    named); exits when none passes."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "map.json"
        recorder = LineRecorder(root, module, output)
        status, used = forked_pytest(root, tests, timeout, recorder, first_failure=False)
        if status == "timeout" or not output.exists():
            raise SystemExit(f"{module}: its tests {status} without any mutation; fix them first")
        data = json.loads(output.read_text(encoding="utf-8"))
    failed = set(data["failed"])
    for test in sorted(failed):
        print(f"  left out, fails without any mutation: {test}", flush=True)
    import_libraries(data["modules"])
    seconds = {t: s for t, s in data["seconds"].items() if t not in failed}
    if not seconds:
        raise SystemExit(f"{module}: no test passes without any mutation; fix them first")
    lines = {t: n for t, n in data["lines"].items() if t in seconds}
    return LineMap(lines, seconds, used)
