"""Batch on a real two-node Ray cluster started by the tests (see local_cluster.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.cluster.local_cluster import Cluster, can_start, local_cluster

ray = pytest.importorskip("ray")

GAUSS = ["--engine", "gaussian", "--param", "radius=1.2"]
SLOW = ["--engine", "cbm3d", "--param", "sigma=20"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not can_start():
        pytest.skip("needs root, ip and unshare for a private network and mount namespace")
    with local_cluster(tmp_path_factory.mktemp("cluster")) as made:
        yield made


def photos(folder: Path, count: int, size: int = 48, nested: bool = True) -> Path:
    rng = np.random.default_rng(count)
    for index in range(count):
        sub = folder / (f"roll{index % 2}" if nested else "")
        sub.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(sub / f"frame{index:02d}.png")
    return folder


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def local_batch(source: Path, out: Path, *options: str) -> None:
    from studio.cli.main import main

    assert main(["batch", "denoise", str(source), "-o", str(out), "-r", *options]) == 0


def test_cluster_batch_writes_what_a_local_batch_writes(cluster: Cluster) -> None:
    source = photos(cluster.base / "shared" / "in", 6)
    local_batch(source, cluster.base / "local", *GAUSS)
    out = cluster.base / "shared" / "out"
    code, events, err = cluster.batch(
        "denoise", str(source), "-o", str(out), "-r", "--cluster", cluster.address, *GAUSS
    )
    assert code == 0, err
    finished = [e for e in events if e.get("event") == "finished"]
    assert len(finished) == 6 and all(e["node"] for e in finished)
    assert files_of(out).keys() - {".studio-batch.jsonl"} == files_of(
        cluster.base / "local"
    ).keys() - {".studio-batch.jsonl"}
    local = files_of(cluster.base / "local")
    for name, data in files_of(out).items():
        if name.endswith(".png"):
            assert data == local[name], name


def test_ship_sends_the_files_when_the_nodes_cannot_see_them(cluster: Cluster) -> None:
    source = photos(cluster.hidden / "in", 4)
    out = cluster.hidden / "out"
    args = ["denoise", str(source), "-o", str(out), "-r", "--cluster", cluster.address, *GAUSS]
    code, _, _ = cluster.batch(*args, "--name", "{stem}-unshipped")
    assert code == 3  # the nodes do not see the driver's folder: the setup is what it claims
    code, _, err = cluster.batch(*args, "--ship")
    assert code == 0, err
    local_batch(source, cluster.base / "local-ship", *GAUSS)
    local = files_of(cluster.base / "local-ship")
    shipped = files_of(out)
    images = [name for name in local if name.endswith(".png")]
    assert len(images) == 4 and all(shipped[name] == local[name] for name in images)


def _done_lines(out: Path) -> int:
    journal = out / ".studio-batch.jsonl"
    if not journal.exists():
        return 0
    return journal.read_text().count('"status": "done"')


def _wait_for_done(out: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while _done_lines(out) < count:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no item finished in time"
        time.sleep(0.2)


def _outputs_complete(out: Path, count: int) -> None:
    outputs = sorted(out.rglob("*.png"))
    assert len(outputs) == count
    assert not [p for p in out.rglob(".*.part")]
    for path in outputs:
        with PILImage.open(path) as image:
            image.load()


def test_resume_after_the_driver_is_killed_redoes_nothing_done(cluster: Cluster) -> None:
    source = photos(cluster.base / "shared" / "resume-in", 10, size=160, nested=False)
    out = cluster.base / "shared" / "resume-out"
    args = ["denoise", str(source), "-o", str(out), "--cluster", cluster.address, *SLOW]
    driver = cluster.studio("batch", *args)
    _wait_for_done(out, 2, driver)
    driver.kill()
    driver.communicate()
    done_before = _done_lines(out)
    code, events, err = cluster.batch(*args, "--resume")
    assert code == 0, err
    skipped = [e for e in events if e.get("event") == "skipped"]
    finished = [e for e in events if e.get("event") == "finished"]
    assert len(skipped) == done_before and len(finished) == 10 - done_before
    _outputs_complete(out, 10)


def test_ctrl_c_cancels_the_remaining_tasks_and_leaves_no_partial_file(cluster: Cluster) -> None:
    source = photos(cluster.base / "shared" / "cancel-in", 8, size=160, nested=False)
    out = cluster.base / "shared" / "cancel-out"
    driver = cluster.studio(
        "batch", "denoise", str(source), "-o", str(out), "--cluster", cluster.address, *SLOW
    )
    _wait_for_done(out, 1, driver)
    driver.send_signal(signal.SIGINT)
    _, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 130, stderr
    time.sleep(2.0)  # a cancelled task, had it gone on, would have written by now
    done = _done_lines(out)
    assert done < 8
    _outputs_complete(out, len(list(out.glob("*.png"))))
    assert not list(out.rglob(".*.part"))


def test_a_worker_node_dying_mid_run_loses_no_item(cluster: Cluster) -> None:
    source = photos(cluster.base / "shared" / "kill-in", 8, size=160, nested=False)
    out = cluster.base / "shared" / "kill-out"
    driver = cluster.studio(
        "batch", "denoise", str(source), "-o", str(out), "--cluster", cluster.address, *SLOW
    )
    _wait_for_done(out, 1, driver)
    cluster.kill_node("worker1")
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr
    other = [line for line in stdout.splitlines() if not line.startswith("{")]
    assert not other, other
    events = [json.loads(line) for line in stdout.splitlines()]
    assert len([e for e in events if e.get("event") == "finished"]) == 8
    _outputs_complete(out, 8)
