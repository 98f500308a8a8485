"""Batch throughput on a Ray cluster of 1 and 2 local nodes (one CPU each) against a local
batch, for one built-in engine; prints a table and writes bench-results/cluster.json.

    python -m benchmarks.cluster [--images 16] [--megapixels 0.25] [--engine nlm]

Needs root, `ip` and `unshare` (the nodes run in a private network namespace on 127.0.0.1).
Every run denoises the same PNGs; the cluster runs include starting the driver's connection.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.perf import RESULTS, photo, print_table
from studio.core.image import Image
from studio.core.imageio import write_image
from tests.cluster.local_cluster import local_cluster


def _timed_batch(
    source: Path,
    out: Path,
    engine: str,
    prefix: Sequence[str] = (),
    env: dict[str, str] | None = None,
    cluster: str | None = None,
) -> float:
    """Seconds of one `studio batch` run (on `cluster` when given), from start to exit."""
    args = ["batch", "denoise", str(source), "-o", str(out), "--engine", engine]
    args += ["--cluster", cluster] if cluster else []
    start = time.perf_counter()
    subprocess.run([*prefix, sys.executable, "-m", "studio", *args], env=env, check=True)
    return time.perf_counter() - start


def run(images: int, megapixels: float, engine: str) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        source = base / "in"
        source.mkdir()
        for index in range(images):
            write_image(Image(photo(megapixels, seed=index)), source / f"img{index:03d}.png")
        local = _timed_batch(source, base / "local", engine)
        rows.append({"where": "local batch", "nodes": 0, "seconds": round(local, 2)})
        for nodes in (1, 2):
            with local_cluster(base / f"cluster{nodes}", nodes) as cluster:
                seconds = _timed_batch(
                    source,
                    base / f"out{nodes}",
                    engine,
                    cluster.inside(),
                    cluster.env,
                    cluster.address,
                )
            rows.append({"where": "ray cluster", "nodes": nodes, "seconds": round(seconds, 2)})
    one_node = rows[1]["seconds"]
    for row in rows:
        row["images_per_s"] = round(images / row["seconds"], 3)
        row["speedup_over_1_node"] = round(one_node / row["seconds"], 2)
        row["overhead_per_item_s"] = round((row["seconds"] - local) / images, 3)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--megapixels", type=float, default=0.25)
    parser.add_argument("--engine", default="nlm")
    args = parser.parse_args(argv)
    rows = run(args.images, args.megapixels, args.engine)
    print_table(f"Batch of {args.images} x {args.megapixels} MP, denoise/{args.engine}", rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
