"""How the window feels: launch time, event-loop stalls while jobs run, cancel latency.

    python -m benchmarks.ui [--launches 3] [--engines denoise/nlm,deblur/wiener]

- Launch: a fresh `studio-gui` process, from spawning it to its window being shown (the app
  prints a marker once the first paint has been processed), and whether torch was loaded then.
- Stall: the longest gap of a 5 ms timer on the GUI thread while a job runs in the worker, on
  the sample photo (960x640). "own" leaves out time Linux reports the GUI thread spent waiting
  for a CPU taken by other programs; "raw" is the plain wall-clock figure.
- Cancel: from pressing Cancel a third of the way through a job to the worker reporting it
  cancelled; bounded by how often the engine reports progress (the next tile or iteration).
- GUI vs CLI: one job (--compare, the default denoise engine) on the sample photo, from
  pressing Run to the result shown, against `studio run` on the same photo (its own reported
  time, reading and writing included; process start-up left out). They should match within 10 %.

Uses Xvfb's display when DISPLAY is set, the offscreen platform otherwise. Prints a table and
writes bench-results/ui.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path("bench-results")
DEFAULT_ENGINES = "denoise/nlm,deblur/wiener,hdr/tonemap,denoise/cbm3d"
DEFAULT_COMPARE = "denoise/cbm3d"
_MARKER = "STUDIO_WINDOW_SHOWN"


def _platform() -> str:
    return "xcb" if os.environ.get("DISPLAY") else "offscreen"


def measure_launch(home: Path) -> dict[str, Any]:
    """Seconds from spawning the GUI process to its window being shown."""
    env = {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_REPORT_LAUNCH": "quit",
        "QT_QPA_PLATFORM": _platform(),
    }
    code = "from studio.ui.app import main; raise SystemExit(main())"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    shown = None
    torch_loaded = None
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(_MARKER):
            shown = time.perf_counter() - started
            torch_loaded = "torch=1" in line
            break
    process.wait(timeout=120)
    return {"shown_s": shown, "torch_loaded_when_shown": torch_loaded}


def _spin(app: Any, until: Callable[[], bool], timeout_s: float) -> bool:
    """Run the event loop (as the app does) until `until()` holds; False on timeout.

    Uses `QEventLoop.exec`: in PySide6 6.12 every `QApplication.processEvents()` call drops
    a reference to None, so a polling loop crashes the interpreter after a few thousand calls.
    """
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.perf_counter() + timeout_s
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(10)

    def check() -> None:
        if until() or time.perf_counter() > deadline:
            loop.quit()

    poll.timeout.connect(check)
    poll.start()
    if not until():
        loop.exec()
    poll.stop()
    return until()


def measure_cli(task: str, engine: str, photo: Path, home: Path) -> float | None:
    """Seconds `studio run` reports for the job (read, run, write), or None if it failed."""
    env = {**os.environ, "STUDIO_HOME": str(home)}
    with tempfile.TemporaryDirectory(prefix="studio-cli-") as tmp:
        command = [sys.executable, "-m", "studio", "run", task, str(photo), "--engine", engine]
        result = subprocess.run(
            [*command, "-o", str(Path(tmp) / f"out{photo.suffix}"), "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
    done = [json.loads(line) for line in result.stdout.splitlines() if '"done"' in line]
    if result.returncode != 0 or not done:
        return None
    return float(done[-1]["elapsed_s"])


def measure_gui_vs_cli(
    app: Any, window: Any, ended: dict[int, str], task: str, engine: str, photo: Path, home: Path
) -> dict[str, Any]:
    """The same job from the window (Run pressed to result shown) and from the CLI, twice each,
    alternating so that a change in the machine's load hits both alike; the best of each."""
    row: dict[str, Any] = {"engine": f"{task}/{engine}", "photo": photo.name}
    window.models_panel.set_task(task)
    if not window.models_panel.select_engine(engine):
        return {**row, "error": "not available on this machine"}
    gui, cli = [], []
    for _ in range(2):
        pressed = time.perf_counter()
        job_id = window.run_current()
        if job_id is None:
            return {**row, "error": window.last_message}
        _spin(app, _in(ended, job_id), 1800)
        gui.append(time.perf_counter() - pressed)
        window.tools.undo()
        cli.append(measure_cli(task, engine, photo, home))
    if None in cli:
        return {**row, "error": "studio run failed"}
    best_gui, best_cli = min(gui), min(c for c in cli if c is not None)
    return {**row, "gui_s": round(best_gui, 2), "cli_s": round(best_cli, 2),
            "ratio": round(best_gui / best_cli, 2)}  # fmt: skip


def measure_window(
    engines: list[tuple[str, str]], home: Path, compare: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Stall and cancel figures, in this process, on a real window with the real engines."""
    os.environ["STUDIO_HOME"] = str(home)
    os.environ.setdefault("QT_QPA_PLATFORM", _platform())
    from studio.core.paths import cache_dir
    from studio.ui.app import create_application
    from studio.ui.main_window import MainWindow
    from studio.ui.samples import ensure_samples
    from studio.ui.stall import StallMonitor

    app = create_application()
    samples = {s.task: s for s in ensure_samples(cache_dir() / "samples")}
    window = MainWindow(samples=False)
    window.show()
    monitor = StallMonitor(parent=window)
    out: dict[str, Any] = {}

    monitor.start()
    _spin(app, lambda: window.registry.tasks() != [], 60)
    described = _spin(app, lambda: window.device_description != "detecting…", 120)
    monitor.stop()
    out["startup"] = {
        "device": window.device_description,
        "device_found": described,
        "stall_ms": round(monitor.longest_ms, 1),
        "stall_own_ms": round(monitor.longest_own_ms, 1),
    }
    ended: dict[int, str] = {}
    window.sig_job_ended.connect(lambda job_id, how: ended.__setitem__(job_id, how))
    opened: list[Any] = []
    window.sig_document_opened.connect(opened.append)
    photo = samples["denoise"].images[0]
    window.open_paths([photo])
    _spin(app, lambda: bool(opened), 60)
    results = []
    for task, engine in engines:
        row: dict[str, Any] = {"engine": f"{task}/{engine}"}
        results.append(row)
        window.models_panel.set_task(task)
        if not window.models_panel.select_engine(engine):
            row["error"] = "not available on this machine"
            continue
        if task == "hdr" and engine != "tonemap":
            row["error"] = "needs brackets; not measured"
            continue
        monitor.start()
        job_id = window.run_current()
        if job_id is None:
            row["error"] = window.last_message
            continue
        _spin(app, _in(ended, job_id), 900)
        monitor.stop()
        record = window.progress_panel.records[job_id]
        row.update(
            {
                "ended": ended.get(job_id, "timeout"),
                "job_s": round(record.elapsed(), 2),
                "stall_ms": round(monitor.longest_ms, 1),
                "stall_own_ms": round(monitor.longest_own_ms, 1),
            }
        )
        window.tools.undo()
        row.update(_cancel_latency(app, window, ended, row["job_s"]))
    out["jobs"] = results
    if compare is not None:
        out["gui_vs_cli"] = measure_gui_vs_cli(app, window, ended, *compare, photo, home)
    window.shutdown()  # no close: it would ask about the unexported results
    return out


def _in(mapping: dict[int, Any], key: int) -> Callable[[], bool]:
    return lambda: key in mapping


def _cancel_latency(app: Any, window: Any, ended: dict[int, str], job_s: float) -> dict[str, Any]:
    """Run the current engine again and cancel it a third of the way through."""
    cancelled_at: dict[int, float] = {}
    window.worker.sig_job_cancelled.connect(
        lambda job_id: cancelled_at.setdefault(job_id, time.perf_counter())
    )
    started_at: dict[int, float] = {}
    window.worker.sig_job_started.connect(
        lambda job_id: started_at.setdefault(job_id, time.perf_counter())
    )
    job_id = window.run_current()
    if job_id is None:
        return {"cancel_ms": None}
    _spin(app, _in(started_at, job_id), 60)
    _spin(app, lambda: time.perf_counter() - started_at[job_id] > job_s / 3, job_s)
    if job_id in ended:
        return {"cancel_ms": None, "cancel_note": "finished before it could be cancelled"}
    clicked = time.perf_counter()
    window.cancel_current()
    _spin(app, lambda: job_id in cancelled_at or job_id in ended, 900)
    if job_id not in cancelled_at:
        return {"cancel_ms": None, "cancel_note": "finished before the cancel took effect"}
    return {"cancel_ms": round((cancelled_at[job_id] - clicked) * 1000, 1)}


def table(result: dict[str, Any]) -> str:
    lines = []
    launch = result["launch"]
    lines.append(f"Platform: {result['platform']} ({result['machine']})")
    times = [run["shown_s"] for run in launch["runs"] if run["shown_s"] is not None]
    if times:
        lines.append(
            f"Launch to window shown: median {statistics.median(times):.2f} s, "
            f"best {min(times):.2f} s over {len(times)} launches; torch loaded at that moment: "
            f"{any(run['torch_loaded_when_shown'] for run in launch['runs'])}"
        )
    window = result["window"]
    startup = window["startup"]
    lines.append(
        f"Device: {startup['device']}; longest stall while the worker imports torch and "
        f"finds the device: {startup['stall_own_ms']} ms own / {startup['stall_ms']} ms raw"
    )
    lines.append("")
    header = f"{'engine':<24}{'job s':>8}{'stall own ms':>14}{'stall raw ms':>14}{'cancel ms':>11}"
    lines.append(header)
    lines.append("-" * len(header))
    for row in window["jobs"]:
        if "error" in row:
            lines.append(f"{row['engine']:<24}  {row['error']}")
            continue
        cancel = row.get("cancel_ms")
        lines.append(
            f"{row['engine']:<24}{row['job_s']:>8.2f}{row['stall_own_ms']:>14.1f}"
            f"{row['stall_ms']:>14.1f}{cancel if cancel is not None else '-':>11}"
        )
    versus = window.get("gui_vs_cli")
    if versus is not None:
        lines.append("")
        if "error" in versus:
            lines.append(f"GUI vs CLI, {versus['engine']}: {versus['error']}")
        else:
            lines.append(
                f"GUI vs CLI, {versus['engine']} on {versus['photo']}: window {versus['gui_s']} s "
                f"(Run to result shown), studio run {versus['cli_s']} s; "
                f"ratio {versus['ratio']} (target within 1.10)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=3)
    parser.add_argument("--engines", default=DEFAULT_ENGINES, help="task/engine,...")
    parser.add_argument(
        "--compare", default=DEFAULT_COMPARE, help="task/engine timed in the window and the CLI"
    )
    args = parser.parse_args(argv)
    engines = [
        (item.split("/", 1)[0], item.split("/", 1)[-1]) for item in args.engines.split(",") if item
    ]
    with tempfile.TemporaryDirectory(prefix="studio-ui-bench-") as tmp:
        home = Path(tmp)
        launches = [measure_launch(home / f"launch{i}") for i in range(args.launches)]
        task, engine = args.compare.split("/", 1)
        window = measure_window(engines, home / "window", (task, engine))
    result = {
        "platform": _platform(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "launch": {"runs": launches},
        "window": window,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ui.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    print(f"\nWritten {RESULTS / 'ui.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
