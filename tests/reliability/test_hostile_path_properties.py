"""Property-based test (hypothesis) of `studio run` and `studio batch` over random paths.

Each path of a job (the photo, its mask or region, the output) is drawn from: a regular file,
a FIFO, a folder, a symlink to a file, a dangling symlink, a symlink to itself, a missing path,
and the very file the job reads as its photo or mask. Whatever the combination: nothing blocks
(a FIFO watchdog unblocks and fails a job stuck on one), the exit code is 0, 2, 3 or 4, no
file the job reads changes, no symlink is replaced, and no temporary file is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from studio.cli.main import main
from tests.reliability.helpers import fifo_watchdog

SIZE = (10, 14)
READ_KINDS = ["regular", "fifo", "folder", "symlink", "dangling", "loop", "missing"]
OUTPUT_KINDS = [*READ_KINDS, "new", "the-photo", "the-mask", "old-result"]
EXIT_CODES = {0, 2, 3, 4}

HOSTILE = settings(
    max_examples=30,
    deadline=None,  # a loaded CI machine; the FIFO watchdog bounds each example instead
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@dataclass
class Scene:
    """A folder holding the job's files; `read` are those that must never change."""

    root: Path
    photo: Path
    mask: Path
    old_result: Path

    @classmethod
    def make(cls, root: Path) -> Scene:
        rng = np.random.default_rng(0)
        photo = root / "photo.png"
        PILImage.fromarray(rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)).save(photo)
        samples = np.zeros(SIZE, np.uint8)
        samples[3:7, 4:9] = 255
        mask = root / "mask.png"
        PILImage.fromarray(samples).save(mask)
        old_result = root / "old_result.png"
        PILImage.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(old_result)
        return cls(root, photo, mask, old_result)

    def path(self, kind: str, role: str, real: Path) -> Path:
        """A path of `kind` for `role`; `real` is the regular file that role would use."""
        path = self.root / f"{role}_{kind}.png"
        if kind == "regular":
            return real
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "folder":
            path.mkdir()
        elif kind == "symlink":
            path.symlink_to(real)
        elif kind == "dangling":
            path.symlink_to(self.root / "nowhere.png")
        elif kind == "loop":
            path.symlink_to(path)
        elif kind == "the-photo":
            return self.photo
        elif kind == "the-mask":
            return self.mask
        elif kind == "old-result":
            return self.old_result
        return path  # "missing" and "new": nothing there

    def snapshot(self) -> dict[str, str]:
        """What must not change: the digest of each file the job may read, each symlink's
        target (outputs, and the older result an output may replace, are left out)."""
        state = {}
        for path in self.root.rglob("*"):
            if path.name.startswith("output_") or path == self.old_result:
                continue
            if path.is_symlink():
                state[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return state

    def fifos(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_fifo()]

    def temporaries(self) -> list[Path]:
        return [
            p
            for p in self.root.rglob(".*")
            if p.name.endswith(".part") or p.name.startswith(".studio-batch-")
        ]


def _job(scene: Scene, photo_kind: str, read_kind: str, use_region: bool) -> list[str]:
    """The task, engine and the auxiliary input: a mask (inpaint) or a region (denoise)."""
    photo = scene.path(photo_kind, "photo", scene.photo)
    if use_region:
        region = scene.path(read_kind, "region", scene.mask)
        return ["denoise", str(photo), "--engine", "gaussian", "--region", str(region)]
    mask = scene.path(read_kind, "mask", scene.mask)
    return ["inpaint", str(photo), "--engine", "telea", "--mask", str(mask)]


def _run_cli(scene: Scene, argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with (
        fifo_watchdog(scene.fifos(), after_s=15) as blocked,
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        code = main(argv)
    assert not blocked, f"{argv} blocked on {blocked}"
    return code, err.getvalue()


def _check(scene: Scene, before: dict[str, str], code: int, err: str) -> None:
    assert code in EXIT_CODES, err
    assert "Traceback" not in err and "Unexpected error" not in err, err
    after = scene.snapshot()
    assert {path: after.get(path) for path in before} == before, "a file the job read changed"
    assert scene.temporaries() == [], "a temporary file was left behind"


@HOSTILE
@given(
    photo=st.sampled_from(READ_KINDS),
    read=st.sampled_from(READ_KINDS),
    output=st.sampled_from(OUTPUT_KINDS),
    use_region=st.booleans(),
)
def test_run_with_any_paths_ends_cleanly(
    photo: str, read: str, output: str, use_region: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        scene = Scene.make(Path(folder))
        task, *options = _job(scene, photo, read, use_region)
        out = scene.path(output, "output", scene.root / "output_new.png")
        before = scene.snapshot()

        code, err = _run_cli(scene, ["run", task, *options, "-o", str(out)])

        _check(scene, before, code, err)
        if code == 0:
            assert out.is_file() and not out.is_symlink()


@HOSTILE
@given(
    items=st.lists(st.sampled_from(READ_KINDS), min_size=1, max_size=3),
    read=st.sampled_from(READ_KINDS),
    out_dir=st.sampled_from(["new", "folder", "symlink", "fifo", "the-photo", "old-result"]),
    use_region=st.booleans(),
)
def test_batch_with_any_paths_ends_cleanly(
    items: list[str], read: str, out_dir: str, use_region: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        scene = Scene.make(Path(folder))
        task, first, *options = _job(scene, items[0], read, use_region)
        others = [
            str(scene.path(kind, f"item{i}", scene.photo)) for i, kind in enumerate(items[1:])
        ]
        target = scene.root / "output_folder"
        if out_dir == "folder":
            target.mkdir()
        elif out_dir == "symlink":
            (scene.root / "output_real").mkdir()
            target.symlink_to(scene.root / "output_real")
        elif out_dir != "new":
            target = scene.path(out_dir, "output", scene.photo)
        before = scene.snapshot()

        argv = ["batch", task, first, *others, *options, "-o", str(target)]
        code, err = _run_cli(scene, argv)

        _check(scene, before, code, err)
