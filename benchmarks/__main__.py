"""Every benchmark in one command: engine speed and memory, neural models, the window.

    python -m benchmarks [--quick]

Runs `benchmarks.perf`, `benchmarks.neural`, `benchmarks.ui` and `benchmarks.soak` one after
another, each in its own process; each prints its table and writes its JSON under
bench-results/. The full run
(1, 12 and 24 megapixels, one model per architecture, batch, 100 megapixels) takes about two
hours on a 2-core CPU; --quick takes minutes. The quality table is separate:
`python -m benchmarks.quality`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HUGE_MODEL = Path(__file__).resolve().parents[2] / "shared/models/denoising/kair_ffdnet_color.pth"
QUICK = {
    "benchmarks.perf": ["--sizes", "1", "--skip-huge"],
    "benchmarks.neural": ["--megapixels", "0.25"],
    "benchmarks.ui": ["--launches", "1"],
    "benchmarks.soak": ["--jobs", "50", "--warm-up", "10"],
}
FULL = {
    "benchmarks.perf": ["--neural", "--batch-engines", "cbm3d,nlm", "--batch-megapixels", "0.25"]
    + (["--huge-model", str(HUGE_MODEL)] if HUGE_MODEL.is_file() else []),
    "benchmarks.neural": [],
    "benchmarks.ui": [],
    "benchmarks.soak": [],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 megapixel, no 100-MP run")
    args = parser.parse_args(argv)
    failed = 0
    for module, module_args in (QUICK if args.quick else FULL).items():
        print(f"\n### {module}", flush=True)
        command = [sys.executable, "-m", module, *module_args]
        failed += subprocess.run(command).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
