"""Every benchmark in one command: engine speed and memory, neural models, the window.

    python -m benchmarks [--quick]

Runs `benchmarks.perf`, `benchmarks.neural` and `benchmarks.ui` one after another, each in its
own process; each prints its table and writes its JSON under bench-results/. The quality
table is separate: `python -m benchmarks.quality`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

QUICK = {
    "benchmarks.perf": ["--sizes", "1", "--skip-huge"],
    "benchmarks.neural": ["--megapixels", "0.25"],
    "benchmarks.ui": ["--launches", "1"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 megapixel, no 100-MP run")
    args = parser.parse_args(argv)
    failed = 0
    for module, quick_args in QUICK.items():
        print(f"\n### {module}", flush=True)
        command = [sys.executable, "-m", module, *(quick_args if args.quick else [])]
        failed += subprocess.run(command).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
