"""The `studio` command end to end: run, batch, engines, gui, exit codes and JSON output."""

from __future__ import annotations

import errno
import importlib
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy import ndimage

from studio.cli.main import main
from studio.core.errors import ModelError
from studio.core.protocol import (
    MASK,
    EngineInput,
    EngineSpec,
    JobInputs,
    NoParams,
    OpRun,
    Progress,
    RunContext,
)
from studio.core.registry import Registry
from studio.engine import registry as engine_registry
from studio.engine.batch import journal as batch_journal

REPO = Path(__file__).resolve().parents[2]
real_import = importlib.import_module


def png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


def load(path: Path) -> np.ndarray:
    with PILImage.open(path) as image:
        return np.asarray(image)


@pytest.fixture
def photo(tmp_path: Path, rng: np.random.Generator) -> Path:
    return png(tmp_path / "photo.png", rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))


GAUSS = ["--engine", "gaussian", "--param", "radius=1.5"]


def gaussian_reference(path: Path, sigma: float) -> np.ndarray:
    """An independent implementation of the built-in denoise (scipy, not OpenCV)."""
    pixels = load(path).astype(np.float32) / 255.0
    smoothed = ndimage.gaussian_filter(
        pixels, sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0
    )
    return np.clip(smoothed * 255.0, 0, 255)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_run_denoise_writes_the_smoothed_image(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    args = ["--engine", "gaussian", "--param", "radius=2"]
    assert main(["run", "denoise", str(photo), "-o", str(out), *args]) == 0
    assert np.abs(load(out) - gaussian_reference(photo, 2.0)).max() <= 1.0
    assert "Wrote" in capsys.readouterr().out


def test_python_dash_m_studio_runs_end_to_end(tmp_path: Path, photo: Path) -> None:
    out = tmp_path / "out.png"
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "run", "denoise", str(photo), "-o", str(out), *GAUSS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert np.abs(load(out) - gaussian_reference(photo, 1.5)).max() <= 1.0


def test_json_lines_report_progress_then_the_result(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    args = ["--json", "--tile", "256", "--engine", "gaussian"]
    started = time.monotonic()
    assert main(["run", "denoise", str(photo), "-o", str(out), *args]) == 0
    wall_s = time.monotonic() - started
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "progress" and {"done", "total", "message"} <= set(events[0])
    final = events[-1]
    assert final["event"] == "done" and Path(final["output"]) == out
    assert final["engine"] == "gaussian" and final["device"] == "cpu" and final["tile"] == 256
    assert 0 < final["elapsed_s"] <= wall_s  # the job's own time, within the call's
    assert all(e["event"] == "progress" for e in events[:-1])


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", b"these are my holiday notes\n"],
    ids=["truncated", "not-an-image"],
)
def test_unreadable_input_is_exit_3_with_one_line(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    out = tmp_path / "out.png"
    assert main(["run", "denoise", str(bad), "-o", str(out)]) == 3
    assert one_line(capsys.readouterr().err).startswith("studio: ")
    assert not out.exists() and bad.read_bytes() == content


@pytest.mark.parametrize(
    "extra",
    [
        ["--param", "radius=3"],
        ["--param", "sigma=-1"],
        ["--param", "sigma"],
        ["--engine", "nonexistent"],
        ["--opacity", "2"],
        ["--device", "tpu"],
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, photo: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    assert main(["run", "denoise", str(photo), "-o", str(out), *extra]) == 2
    assert capsys.readouterr().err.strip()
    assert not out.exists()


def test_unknown_task_and_missing_output_exit_2(photo: Path) -> None:
    assert main(["run", "sharpen", str(photo), "-o", "x.png"]) == 2
    assert main(["run", "denoise", str(photo)]) == 2
    assert main(["frobnicate"]) == 2


def test_refuses_to_overwrite_the_input(photo: Path) -> None:
    before = photo.read_bytes()
    assert main(["run", "denoise", str(photo), "-o", str(photo)]) == 2
    assert photo.read_bytes() == before


def test_one_input_unless_the_task_takes_several(tmp_path: Path, photo: Path) -> None:
    assert main(["run", "denoise", str(photo), str(photo), "-o", str(tmp_path / "o.png")]) == 2


def _failing_registry(error: Exception) -> Registry:
    def run_failing(inputs: JobInputs, params: NoParams, ctx: RunContext) -> OpRun:
        yield Progress(0, 2, "Starting")
        raise error

    spec = EngineSpec("denoise", "broken", "Broken", NoParams, run_failing, default=True)
    return Registry([spec])


@pytest.mark.parametrize(
    ("error", "code"), [(ModelError("The model file is damaged"), 4), (RuntimeError("boom"), 1)]
)
def test_a_failing_engine_leaves_no_output_and_the_input_untouched(
    tmp_path: Path,
    photo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    code: int,
) -> None:
    monkeypatch.setattr(engine_registry, "build_registry", lambda: _failing_registry(error))
    before = photo.read_bytes()
    out = tmp_path / "out.png"
    assert main(["run", "denoise", str(photo), "-o", str(out)]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(error) in err
    assert not out.exists() and photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_debug_shows_the_traceback_of_unexpected_errors(
    tmp_path: Path, photo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(engine_registry, "build_registry", lambda: _failing_registry(KeyError("x")))
    assert main(["run", "denoise", str(photo), "-o", str(tmp_path / "o.png"), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_json_errors_are_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["run", "denoise", str(bad), "-o", str(tmp_path / "o.png"), "--json"]) == 3
    (event,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert event["event"] == "error" and event["exit_code"] == 3 and event["message"]


def test_engines_lists_tasks_engines_and_availability(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["engines", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    registry = engine_registry.build_registry()
    assert [t["task"] for t in listing["tasks"]] == registry.tasks()
    denoise = next(t for t in listing["tasks"] if t["task"] == "denoise")
    ids = [e["id"] for e in denoise["engines"]]
    assert ids == [spec.id for spec in registry.engines("denoise")]
    assert sum(e["default"] for e in denoise["engines"]) == 1
    assert all(
        {"name", "kind", "available", "reason", "params"} <= set(e) for e in denoise["engines"]
    )
    assert main(["engines", "denoise"]) == 0
    human = capsys.readouterr().out
    assert human.startswith("denoise") and "gaussian" in human and "sigma" in human


def test_batch_over_a_folder_with_one_corrupt_file(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        png(tmp_path / "in" / f"p{i}.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    (tmp_path / "in" / "p1.png").write_bytes(b"\x89PNG\r\n\x1a\ncut short")
    out_dir = tmp_path / "out"
    code = main(["batch", "denoise", str(tmp_path / "in"), "-o", str(out_dir), "--json"])
    assert code == 3
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = events[-1]
    assert summary["event"] == "summary"
    assert (summary["done"], summary["failed"], summary["total"]) == (2, 1, 3)
    assert [Path(f["input"]).name for f in summary["failures"]] == ["p1.png"]
    assert sorted(p.name for p in out_dir.glob("*.png")) == ["p0_denoise.png", "p2_denoise.png"]
    failed = [e for e in events if e["event"] == "failed"]
    assert len(failed) == 1 and failed[0]["exit_code"] == 3


def test_batch_with_a_two_step_recipe(tmp_path: Path, rng: np.random.Generator) -> None:
    source = png(tmp_path / "in" / "a.png", rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        '[[steps]]\ntask = "denoise"\nengine = "gaussian"\nparams = { radius = 1.0 }\n'
        '[[steps]]\ntask = "denoise"\nengine = "gaussian"\nparams = { radius = 2.0 }\n'
    )
    out_dir = tmp_path / "out"
    args = ["batch", "--recipe", str(recipe), str(tmp_path / "in"), "-o", str(out_dir)]
    assert main([*args, "--name", "{stem}-{task}", "--format", "tif"]) == 0
    (output,) = out_dir.glob("*.tif")
    assert output.name == "a-denoise+denoise.tif"
    # Two Gaussian blurs compose into one of sigma sqrt(1 + 4).
    expected = gaussian_reference(source, float(np.sqrt(5.0)))
    assert np.abs(load(output).astype(np.float32) - expected).max() <= 2.0


def test_batch_recipe_problems_are_caught_before_any_work(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(
        json.dumps(
            [
                {"task": "denoise"},
                {"task": "denoise", "engine": "gaussian", "params": {"radius": 99}},
            ]
        )
    )
    out_dir = tmp_path / "out"
    assert main(["batch", "--recipe", str(recipe), str(photo), "-o", str(out_dir)]) == 3
    assert "radius" in capsys.readouterr().err and not out_dir.exists()
    assert main(["batch", "denoise", "--recipe", str(recipe), str(photo), "-o", str(out_dir)]) == 2


def test_batch_unknown_task_and_param_exit_2(tmp_path: Path, photo: Path) -> None:
    out = str(tmp_path / "out")
    assert main(["batch", "sharpen", str(photo), "-o", out]) == 2
    assert main(["batch", "denoise", str(photo), "-o", out, "--param", "colour=2"]) == 2


def test_gui_without_a_window_module_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(name: str) -> types.ModuleType:
        if name != "studio.ui.app":
            return real_import(name)
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(importlib, "import_module", missing)
    assert main([]) == 1
    assert "window" in capsys.readouterr().err


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The file lists a stand-in window was opened with."""
    opened: list[list[str]] = []
    app = types.SimpleNamespace(run=lambda files: opened.append(files) or 0)
    monkeypatch.setattr(
        importlib,
        "import_module",
        lambda name: app if name == "studio.ui.app" else real_import(name),
    )
    return opened


def test_gui_opens_the_window_with_the_files(opened: list[list[str]]) -> None:
    assert main(["gui", "a.jpg", "b.tif"]) == 0
    assert main([]) == 0
    assert opened == [["a.jpg", "b.tif"], []]


def test_the_cli_imports_neither_the_ui_nor_torch() -> None:
    code = (
        "import sys, studio.cli.main; "
        "print(any(m.startswith(('studio.ui', 'PySide6', 'torch')) for m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr


def test_region_limits_the_effect_and_opacity_zero_keeps_the_original(
    tmp_path: Path, photo: Path
) -> None:
    right_half = np.zeros((40, 56), np.uint8)
    right_half[:, 28:] = 255
    region = png(tmp_path / "region.png", right_half)
    out = tmp_path / "out.png"
    args = ["--region", str(region), *GAUSS]
    assert main(["run", "denoise", str(photo), "-o", str(out), *args]) == 0
    result, original = load(out).astype(np.float32), load(photo).astype(np.float32)
    assert np.array_equal(result[:, :28], original[:, :28])
    assert np.abs(result[:, 28:] - gaussian_reference(photo, 1.5)[:, 28:]).max() <= 1.0
    faded = tmp_path / "faded.png"
    assert main(["run", "denoise", str(photo), "-o", str(faded), "--opacity", "0", *GAUSS]) == 0
    assert np.array_equal(load(faded), load(photo))


def _fill_registry() -> Registry:
    def run_fill(inputs: JobInputs, params: NoParams, ctx: RunContext) -> OpRun:
        assert inputs.mask is not None
        yield Progress(0, 1, "Filling")
        pixels = inputs.image.pixels.copy()
        pixels[inputs.mask > 0.5] = 0.5
        return inputs.image.with_pixels(pixels)

    spec = EngineSpec(
        "inpaint",
        "grey",
        "Grey fill",
        NoParams,
        run_fill,
        default=True,
        inputs=(EngineInput(MASK, required=True),),
    )
    return Registry([spec])


def test_inpaint_mask_is_read_checked_and_passed(
    tmp_path: Path, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_registry, "build_registry", _fill_registry)
    out = tmp_path / "out.png"
    assert main(["run", "inpaint", str(photo), "-o", str(out)]) == 2  # no mask given
    wrong = png(tmp_path / "wrong.png", np.full((10, 10), 255, np.uint8))
    assert main(["run", "inpaint", str(photo), "-o", str(out), "--mask", str(wrong)]) == 3
    assert not out.exists()
    mask = np.zeros((40, 56), np.uint8)
    mask[10:20, 5:15] = 255
    mask_file = png(tmp_path / "mask.png", mask)
    assert main(["run", "inpaint", str(photo), "-o", str(out), "--mask", str(mask_file)]) == 0
    result, original = load(out), load(photo)
    assert np.all(result[10:20, 5:15] == 128)
    assert np.array_equal(result[mask == 0], original[mask == 0])


def test_a_read_only_output_folder_is_a_clear_error(
    tmp_path: Path, photo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tests run as root here, so chmod cannot make a folder read-only: simulate the OS error.
    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(batch_journal.tempfile, "mkstemp", read_only)
    before = photo.read_bytes()
    out_dir = tmp_path / "out"
    assert main(["batch", "denoise", str(photo), "-o", str(out_dir)]) == 3
    assert "Read-only file system" in one_line(capsys.readouterr().err)
    assert photo.read_bytes() == before and not list(out_dir.glob("*.png"))


def test_the_cli_works_without_the_models_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def without_models(name: str) -> types.ModuleType:
        if name == "studio.cli.models":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name)

    monkeypatch.setattr(importlib, "import_module", without_models)
    assert main(["--help"]) == 0
    assert " models " not in capsys.readouterr().out
    assert main(["models"]) == 2


def test_run_keeps_exif_and_icc_and_records_the_operation(tmp_path: Path) -> None:
    from PIL import Image as PILImage
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = PILImage.Exif()
    exif[0x010F] = "Nikon"
    photo, out = tmp_path / "photo.jpg", tmp_path / "out.jpg"
    pixels = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(photo, exif=exif, icc_profile=icc, quality=95)
    before = photo.read_bytes()
    assert main(["run", "denoise", str(photo), "-o", str(out), *GAUSS]) == 0
    with PILImage.open(out) as written:
        assert written.info["icc_profile"] == icc
        assert written.getexif()[0x010F] == "Nikon"
        assert "denoise/gaussian" in written.getexif()[0x0131]  # Software
    assert photo.read_bytes() == before


def test_a_file_given_without_a_command_opens_the_window(
    opened: list[list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`studio photo.jpg`, as a file manager or a user types it, is `studio gui photo.jpg`."""
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").write_bytes(b"")  # a file named like a command: still the command
    assert main([str(photo), "other.tif"]) == 0
    assert opened == [[str(photo), "other.tif"]]
    assert main(["run"]) == 2
    assert main([str(tmp_path / "missing.jpg")]) == 2
    assert len(opened) == 1
