"""Interrupting the real `python -m studio` process: SIGKILL then --resume, and Ctrl-C (SIGINT).

SIGKILL interrupts real work made long by its size; SIGINT interrupts a test engine whose jobs
run until interrupted. The tests wait for the process's own JSON events, never for a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from studio.engine.batch import MANIFEST_NAME
from tests.helpers import default_sigint

REPO = Path(__file__).resolve().parents[2]
COUNT = 20
SHAPE = (512, 640, 3)
SLOW = ["--engine", "nlm", "--param", "sigma=20"]


@pytest.fixture(scope="module")
def shoot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs shared by the tests of this module (they never write into it)."""
    folder = tmp_path_factory.mktemp("shoot")
    rng = np.random.default_rng(0)
    for i in range(COUNT):
        pixels = rng.integers(0, 256, SHAPE, dtype=np.uint8)
        PILImage.fromarray(pixels).save(folder / f"img{i:02d}.png", compress_level=0)
    return folder


def studio(*args: str, finish_first: int | None = None) -> subprocess.Popen[str]:
    """The studio command; with `finish_first`, with the `held` engine whose jobs after the
    first `finish_first` run until interrupted (tests/cli/held_studio.py)."""
    module = "studio" if finish_first is None else "tests.cli.held_studio"
    return subprocess.Popen(
        [sys.executable, "-m", module, *args, "--json"],
        cwd=REPO,
        env={**os.environ, "STUDIO_TEST_FINISH_FIRST": str(finish_first or 0)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


def wait_for(proc: subprocess.Popen[str], event: str, count: int) -> list[dict[str, object]]:
    """Read JSON events until `count` of kind `event` arrived; fail if the process ends first."""
    assert proc.stdout is not None
    seen: list[dict[str, object]] = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if sum(e["event"] == event for e in seen) >= count:
            return seen
    pytest.fail(f"studio ended before {count} {event!r} events: {proc.wait()} {seen[-3:]}")


def expected_names() -> set[str]:
    return {f"img{i:02d}_denoise.png" for i in range(COUNT)}


def assert_complete(path: Path) -> None:
    with PILImage.open(path) as image:
        image.load()  # decodes every row: a truncated file raises here
        assert (image.height, image.width, len(image.getbands())) == SHAPE


def test_sigkill_then_resume_gives_every_output_once_and_complete(
    shoot: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = studio("batch", "denoise", str(shoot), "-o", str(out), *SLOW)
    try:
        finished_before_kill = wait_for(proc, "finished", 5)
    finally:
        proc.kill()
        proc.wait()
    done_before = {
        Path(str(e["output"])).name for e in finished_before_kill if e["event"] == "finished"
    }

    resumed = subprocess.run(
        [sys.executable, "-m", "studio", "batch", "denoise", str(shoot), "-o", str(out), *SLOW,
         "--resume", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    skipped = {Path(str(e["output"])).name for e in events if e["event"] == "skipped"}
    assert done_before <= skipped
    summary = events[-1]
    assert summary["event"] == "summary" and summary["failed"] == 0
    assert summary["done"] + summary["skipped"] == COUNT

    files = {p.name for p in out.iterdir()}
    assert files == expected_names() | {MANIFEST_NAME}, "duplicates or temporary files left"
    for name in expected_names():
        assert_complete(out / name)


def test_sigint_stops_the_batch_with_exit_130_and_no_partial_output(
    shoot: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = studio(
        "batch", "denoise", str(shoot), "-o", str(out), "--engine", "held", finish_first=3
    )
    wait_for(proc, "finished", 3)
    wait_for(proc, "progress", 1)  # the fourth image is being worked on, and never ends
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "studio: Cancelled"
    outputs = [p for p in out.iterdir() if p.name != MANIFEST_NAME]
    assert all(p.name in expected_names() for p in outputs), "temporary files left"
    assert len(outputs) == 3
    for path in outputs:
        assert_complete(path)


def test_sigint_during_run_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photo = tmp_path / "big.png"
    PILImage.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(
        photo, compress_level=1
    )
    before = photo.read_bytes()
    out = tmp_path / "out" / "big_clean.png"
    proc = studio("run", "denoise", str(photo), "-o", str(out), "--engine", "held", finish_first=0)
    wait_for(proc, "progress", 1)  # the job has started, and never ends
    proc.send_signal(signal.SIGINT)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert json.loads(stdout.splitlines()[-1]) == {
        "event": "error", "message": "Cancelled", "exit_code": 130,
    }  # fmt: skip
    assert photo.read_bytes() == before
    assert [p.name for p in tmp_path.rglob("*")] == ["big.png"]
