"""Hostile and unusual images through `studio run` and `studio batch`, end to end.

Every broken file gives exit 3 and one line naming it; every valid-but-odd file gives the
result the same pixels give when decoded independently (Pillow/libpng) and run through the
library; no input file ever changes; nothing half-written is left; nothing hangs.
(`tests/core/test_imageio.py` proves the reader's unit-level behaviour.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from studio.cli.main import main
from studio.core.errors import StudioError
from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs, RunContext
from studio.core.stored import as_image
from studio.engine.jobs import JobRequest, run_job
from studio.engine.registry import build_registry
from tests.helpers import finish
from tests.reliability.helpers import error_line, leftovers, read_png, studio_process
from tests.reliability.inputs import BROKEN, ODD, digest, make_broken

# (task, engine): the default denoise, and a single-image HDR engine with its own maths.
JOBS = [("denoise", "gaussian"), ("hdr", "tonemap")]
JOB_IDS = ["denoise", "tonemap"]


def _argv(task: str, engine: str, source: Path, out: Path) -> list[str]:
    return ["run", task, str(source), "-o", str(out), "--engine", engine]


def _library_result(task: str, engine: str, pixels: np.ndarray, depth: int) -> Image:
    """The job run through `run_job` on independently decoded pixels."""
    image = Image(np.ascontiguousarray(pixels, np.float32), ImageMeta(bit_depth=depth))
    return finish(
        run_job(build_registry(), JobRequest(task, JobInputs((image,)), engine), RunContext())
    )


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize(("task", "engine"), JOBS, ids=JOB_IDS)
def test_broken_file_is_exit_3_with_one_line_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, task: str, engine: str
) -> None:
    source = make_broken(tmp_path, case)
    before = digest(source)
    out = tmp_path / "out" / "result.png"

    assert main(_argv(task, engine, source, out)) == 3

    assert source.name in error_line(capsys.readouterr().err)
    assert digest(source) == before
    assert leftovers(tmp_path, keep=lambda p: p == source) == []


@pytest.mark.parametrize("case", sorted(ODD))
@pytest.mark.parametrize(("task", "engine"), JOBS, ids=JOB_IDS)
def test_odd_but_valid_file_gives_the_library_result(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    task: str,
    engine: str,
) -> None:
    source, (pixels, alpha) = ODD[case](tmp_path)
    before = digest(source)
    out = tmp_path / "result.png"

    assert main(_argv(task, engine, source, out)) == 0, capsys.readouterr().err

    assert "Traceback" not in capsys.readouterr().err
    assert digest(source) == before
    written = read_png(out)
    library = _library_result(task, engine, pixels, 16 if case == "grey-16bit" else 8)
    depth = 16 if written.dtype == np.uint16 else 8
    assert depth == library.meta.bit_depth, "the output's bit depth is not the job's"
    top = 2**depth - 1
    colour = written[..., : pixels.shape[2]].astype(np.float64)
    expected = np.rint(np.clip(library.pixels, 0, 1) * top)
    assert colour.shape == expected.shape
    assert np.abs(colour - expected).max() <= 1
    if alpha is None:
        assert written.shape[2] == pixels.shape[2], "an alpha channel appeared"
    else:
        np.testing.assert_array_equal(written[..., -1], np.rint(alpha * top))


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_file_denoised_matches_an_independent_gaussian(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    source, (pixels, _) = ODD[case](tmp_path)
    out = tmp_path / "result.png"
    radius = 1.5
    argv = ["run", "denoise", str(source), "-o", str(out), "--engine", "gaussian"]
    assert main([*argv, "--param", f"radius={radius}"]) == 0
    written = read_png(out).astype(np.float64)
    top = 65535 if case == "grey-16bit" else 255
    reference = ndimage.gaussian_filter(
        pixels.astype(np.float64), sigma=(radius, radius, 0), mode="reflect", truncate=4.0
    )
    error = np.abs(written[..., : pixels.shape[2]] / top - reference)
    assert error.max() <= 1.5 / top + 1e-4


def test_a_real_process_survives_a_folder_of_hostile_files(tmp_path: Path) -> None:
    """One `studio batch` process over every case: no crash, no hang, every item reported."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    broken = {make_broken(shoot, case).name for case in BROKEN}
    odd = {ODD[case](shoot)[0].name for case in ODD}
    before = {path.name: digest(path) for path in shoot.iterdir()}
    out = tmp_path / "out"

    argv = ["batch", "denoise", str(shoot), "-o", str(out), "--json", "--engine", "gaussian"]
    argv += ["--param", "radius=1"]  # a fixed radius: no noise estimate (it fails on 1x1)
    done = studio_process(argv)

    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    failed = {Path(e["input"]).name: e for e in events if e["event"] == "failed"}
    finished = {Path(e["input"]).name: e for e in events if e["event"] == "finished"}
    assert set(failed) == broken and set(finished) == odd
    for name, event in failed.items():
        assert event["exit_code"] == 3 and name in event["reason"]
        assert "\n" not in event["reason"]
    assert {path.name: digest(path) for path in shoot.iterdir()} == before
    outputs = {Path(e["output"]).name for e in finished.values()}
    assert {p.name for p in out.iterdir() if not p.name.startswith(".studio-batch")} == outputs


@pytest.mark.parametrize("case", ["png-bomb", "corrupt-jpeg-header"])
def test_a_real_process_refuses_a_broken_file_in_one_line(tmp_path: Path, case: str) -> None:
    source = make_broken(tmp_path, case)
    out = tmp_path / "out.png"
    argv = ["run", "denoise", str(source), "-o", str(out), "--engine", "gaussian"]
    done = studio_process(argv, timeout=60)
    assert done.returncode == 3
    line = error_line(done.stderr)
    assert source.name in line
    if "bomb" in case:
        assert "megapixels" in line and "STUDIO_MAX_PIXELS" in line
    assert not out.exists()


def _single_image_engines() -> list[Any]:
    registry, ctx = build_registry(), RunContext()
    engines = [
        spec
        for task in registry.tasks()
        for spec in registry.engines(task)
        if not spec.merges_images and spec.available(ctx).ok
    ]
    return [
        pytest.param(
            spec.task,
            spec.id,
            id=f"{spec.task}/{spec.id}",
        )
        for spec in engines
    ]


@pytest.mark.parametrize(("task", "engine"), _single_image_engines())
def test_tiny_pictures_work_or_fail_clearly_with_every_engine(task: str, engine: str) -> None:
    """A single pixel and a two-row grey strip, with each engine's defaults."""
    registry = build_registry()
    spec = registry.get(task, engine)
    for shape in [(1, 1, 3), (2, 9, 1)]:
        pixels = np.random.default_rng(0).random(shape, dtype=np.float32)
        mask = np.ones(shape[:2], np.float32)
        inputs = JobInputs((Image(pixels, ImageMeta(bit_depth=8)),), {"mask": mask})
        try:
            job = run_job(registry, JobRequest(task, inputs, engine), RunContext())
            result = as_image(finish(job))  # an enlargement comes back at its stored depth
        except StudioError as err:
            assert "\n" not in str(err), shape
        else:
            size = shape[:2]
            if spec.result_size is not None:  # upscaling: the declared size
                size = spec.result_size(size, spec.params())
            assert result.pixels.shape[:2] == size and np.isfinite(result.pixels).all()
