"""Run every task's quality benchmark and print one table (and write it as JSON).

python -m benchmarks.quality [--quick] [--only denoise,deblur] [--json results.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

TASKS = ("denoise", "deblur", "inpaint", "hdr", "colorize", "style", "upscale")
COLUMNS = ("task", "engine", "dataset", "psnr", "ssim", "target", "sec_per_mp", "note")


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value if value is not None else "")


def print_table(rows: list[dict[str, object]]) -> None:
    widths = {c: max([len(c), *(len(_fmt(r.get(c))) for r in rows)]) for c in COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller images")
    parser.add_argument("--only", default=",".join(TASKS), help="comma-separated tasks")
    parser.add_argument("--json", type=Path, default=Path("bench-results/quality.json"))
    args = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    for task in args.only.split(","):
        module = importlib.import_module(f"benchmarks.quality.{task}")
        task_rows = module.rows(args.quick)
        rows.extend(task_rows)
        print(f"[{task}] {len(task_rows)} rows", file=sys.stderr)
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
