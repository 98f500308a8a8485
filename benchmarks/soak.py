"""Host memory across a long session: many jobs through the window's worker thread.

    python -m benchmarks.soak [--jobs 200] [--warm-up 50] [--side 256]

Runs built-in denoise jobs (every 25th one failing) through `JobWorker`, as the window does,
and prints resident memory after the warm-up and after the soak, with the growth. The target
is under 5 %; tests check the load-independent part (no picture kept alive), this measures the
rest. Writes bench-results/soak.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path("bench-results")
FAIL_EVERY = 25


def rss_mib() -> float:
    gc.collect()
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("needs /proc/self/status (Linux)")


def _job(index: int, side: int) -> Any:
    from studio.core.image import Image
    from studio.core.protocol import JobInputs
    from studio.engine.jobs import JobRequest, run_job
    from studio.engine.registry import build_registry
    from studio.ui.worker import WorkerJob

    def start(ctx: Any) -> Any:
        pixels = np.random.default_rng(index).random((side, side, 3), dtype=np.float32)
        # an out-of-range parameter makes every 25th job fail, as a bad recipe would
        sigma = 1000.0 if index % FAIL_EVERY == FAIL_EVERY - 1 else 2.0
        request = JobRequest("denoise", JobInputs((Image(pixels),)), "gaussian", {"sigma": sigma})
        return run_job(build_registry(), request, ctx)

    return WorkerJob(start=start)


def run_jobs(app: Any, worker: Any, count: int, side: int) -> int:
    ended = [0]

    def count_end(*_: Any) -> None:
        ended[0] += 1

    signals = (worker.sig_job_finished, worker.sig_job_failed, worker.sig_job_cancelled)
    for signal in signals:
        signal.connect(count_end)
    for index in range(count):
        worker.submit(_job(index, side))
    while ended[0] < count:
        app.processEvents()
        time.sleep(0.005)
    for signal in signals:
        signal.disconnect(count_end)
    return ended[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=50)
    parser.add_argument("--side", type=int, default=256)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication

    from studio.ui.worker import JobWorker

    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    worker = JobWorker(device="cpu")
    worker.start()
    try:
        run_jobs(app, worker, args.warm_up, args.side)
        before = rss_mib()
        run_jobs(app, worker, args.jobs, args.side)
        after = rss_mib()
    finally:
        worker.shutdown()
        worker.wait(10_000)
    growth = 100 * (after - before) / before
    print(f"{'jobs':>6}{'RSS after warm-up MiB':>24}{'RSS after MiB':>16}{'growth %':>10}")
    print(f"{args.jobs:>6}{before:>24.1f}{after:>16.1f}{growth:>10.1f}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    RESULTS.mkdir(exist_ok=True)
    report = {"jobs": args.jobs, "before_mib": before, "after_mib": after, "growth_pct": growth}
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
