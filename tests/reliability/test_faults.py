"""Faults inside a job: an engine that raises, one that returns NaN or garbage, a device that runs
out of memory. The job fails with a clear message, or recovers as designed, and the next job
runs: through `run_job`, the batch runner, the command and the window's worker thread.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from studio.cli.main import main
from studio.core.errors import OutOfMemoryError, StudioError
from studio.core.image import Image, ImageMeta
from studio.core.protocol import EngineSpec, JobInputs, NoParams, OpRun, Progress, RunContext
from studio.core.registry import Registry
from studio.engine import registry as engine_registry
from studio.engine.jobs import JobRequest, run_job
from studio.engine.neural import executor
from studio.engine.neural.arches.dncnn_residual import ResidualDnCNN
from studio.engine.neural.executor import run_model
from studio.engine.neural.loader import load_model
from studio.engine.neural.model import LoadedModel
from tests.helpers import finish
from tests.reliability.helpers import leftovers, read_png

# --- misbehaving engines ---------------------------------------------------------------------


def _engine(engine_id: str, make: Callable[[Image], Image]) -> EngineSpec:
    def run(inputs: JobInputs, params: NoParams, ctx: RunContext) -> OpRun:
        yield Progress(0, 1, engine_id)
        return make(inputs.image)

    return EngineSpec(task="denoise", id=engine_id, name=engine_id, params=NoParams, run=run)


def _raise(error: BaseException) -> Callable[[Image], Image]:
    def make(image: Image) -> Image:
        # a fresh copy each time: re-raising one instance would chain every earlier traceback,
        # and the pictures in its frames, onto it
        raise copy.copy(error).with_traceback(None)

    return make


def _nan(image: Image) -> Image:
    pixels = image.pixels.copy()
    pixels[len(pixels) // 2, :, 0] = np.nan
    return image.with_pixels(pixels)


def _infinite(image: Image) -> Image:
    return image.with_pixels(np.full_like(image.pixels, np.inf))


def _inverted(image: Image) -> Image:
    return image.with_pixels(1.0 - image.pixels)


FAULTY = {
    "raises": _engine("raises", _raise(RuntimeError("cv2 error: (-215) assertion failed"))),
    "out-of-memory": _engine("out-of-memory", _raise(MemoryError())),
    "studio-error": _engine("studio-error", _raise(StudioError("The engine gave up"))),
    "nan": _engine("nan", _nan),
    "infinite": _engine("infinite", _infinite),
    "returns-none": _engine("returns-none", lambda image: None),  # type: ignore[arg-type,return-value]
}
GOOD = _engine("inverted", _inverted)


def _registry() -> Registry:
    return Registry([GOOD, *FAULTY.values()])


def _image(seed: int = 0, shape: tuple[int, int, int] = (24, 32, 3)) -> Image:
    pixels = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return Image(pixels, ImageMeta())


def _request(engine: str, image: Image) -> JobRequest:
    return JobRequest("denoise", JobInputs((image,)), engine)


RAISED = {  # what reaches the caller (the worker turns each into a one-line message)
    "raises": (RuntimeError, "cv2 error"),
    "out-of-memory": (MemoryError, ""),
    "studio-error": (StudioError, "The engine gave up"),
    "nan": (StudioError, "nan produced invalid pixels \\(NaN or infinity\\)"),
    "infinite": (StudioError, "infinite produced invalid pixels \\(NaN or infinity\\)"),
    "returns-none": (AttributeError, "pixels"),
}


@pytest.mark.parametrize("fault", sorted(FAULTY))
def test_a_faulty_engine_fails_its_job_and_the_next_job_runs(fault: str) -> None:
    registry, ctx, image = _registry(), RunContext(), _image()
    error, message = RAISED[fault]
    with pytest.raises(error, match=message):
        finish(run_job(registry, _request(fault, image), ctx))
    result = finish(run_job(registry, _request("inverted", image), ctx))
    np.testing.assert_allclose(result.pixels, 1.0 - image.pixels)


@pytest.mark.parametrize("fault", sorted(FAULTY))
def test_the_command_reports_a_faulty_engine_without_a_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault: str,
) -> None:
    monkeypatch.setattr(engine_registry, "build_registry", _registry)
    photo = tmp_path / "photo.png"
    PILImage.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photo)
    out = tmp_path / "out.png"
    code = main(["run", "denoise", str(photo), "-o", str(out), "--engine", fault])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert err.splitlines()[0].startswith("studio: ")
    assert not out.exists()
    assert main(["run", "denoise", str(photo), "-o", str(out), "--engine", "inverted"]) == 0
    np.testing.assert_array_equal(read_png(out), 255)


def test_a_batch_survives_faulty_items(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that raises on one picture and returns NaN on another: those two fail with a
    reason, the others are written, and nothing half-written is left."""

    def picky(image: Image) -> Image:
        level = round(float(image.pixels.mean()) * 10)
        if level == 3:
            raise RuntimeError("simulated crash on the third picture")
        return _nan(image) if level == 6 else _inverted(image)

    registry = Registry([_engine("picky", picky)])
    monkeypatch.setattr(engine_registry, "build_registry", lambda: registry)
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for level in range(1, 9):
        grey = np.full((16, 16, 3), round(level / 10 * 255), np.uint8)
        PILImage.fromarray(grey).save(shoot / f"p{level}.png")
    out = tmp_path / "out"
    stdout = io.StringIO()
    monkeypatch.setattr("sys.stdout", stdout)
    code = main(["batch", "denoise", str(shoot), "-o", str(out), "--engine", "picky", "--json"])
    events = [json.loads(line) for line in stdout.getvalue().splitlines()]
    failed = {Path(e["input"]).name: e["reason"] for e in events if e["event"] == "failed"}
    assert code == 1
    assert set(failed) == {"p3.png", "p6.png"}
    assert "simulated crash" in failed["p3.png"] and "NaN" in failed["p6.png"]
    written = leftovers(out, keep=lambda p: p.name.startswith(".studio-batch"))
    assert written == [f"p{level}_denoise.png" for level in (1, 2, 4, 5, 7, 8)]
    for level in (1, 2, 4, 5, 7, 8):
        expected = 255 - round(level / 10 * 255)
        np.testing.assert_array_equal(read_png(out / f"p{level}_denoise.png"), expected)


# --- out of memory in the neural executor ----------------------------------------------------

SIDE = 160  # the image; the first tile is 128 px, the retry 64 px


@pytest.fixture(scope="module")
def dncnn_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    module = ResidualDnCNN(3, 8, 4)
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.1, 0.1)
            layer.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("models") / "dncnn.pth"
    torch.save(module.state_dict(), path)
    return path


@dataclasses.dataclass
class OutOfMemoryAbove:
    """A model call that runs out of memory for windows wider than `limit` (or always)."""

    forward: Callable[..., torch.Tensor]
    limit: int | None
    error: Callable[[], BaseException]
    sides: list[int] = dataclasses.field(default_factory=list)

    def __call__(self, module: torch.nn.Module, x: torch.Tensor, cond: Any) -> torch.Tensor:
        self.sides.append(int(x.shape[-1]))
        if self.limit is None or x.shape[-1] > self.limit:
            raise self.error()
        return self.forward(module, x, cond)


OOM_ERRORS = {
    "torch-oom": lambda: torch.cuda.OutOfMemoryError("CUDA out of memory."),
    "runtime-error": lambda: RuntimeError(
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"
    ),
}


def _with_faulty_call(model: LoadedModel, fault: OutOfMemoryAbove) -> LoadedModel:
    fault.forward = model.forward
    return dataclasses.replace(model, forward=fault)


def _photo(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random((SIDE, SIDE, 3), dtype=np.float32)


def _run(model: LoadedModel, pixels: np.ndarray, ctx: RunContext) -> np.ndarray:
    job = run_model(model, pixels, ctx)
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return np.asarray(stop.value)


@pytest.mark.parametrize("error", sorted(OOM_ERRORS))
def test_out_of_memory_on_the_first_tile_retries_with_half_tiles(
    dncnn_file: Path, error: str
) -> None:
    model = load_model(dncnn_file)
    pixels = _photo()
    reference = _run(model, pixels, RunContext(device="cpu"))  # the whole image at once
    fault = OutOfMemoryAbove(model.forward, limit=64, error=OOM_ERRORS[error])
    log: list[str] = []
    ctx = RunContext(device="cpu", tile=128, log=log.append)

    result = _run(_with_faulty_call(model, fault), pixels, ctx)

    assert 64 < fault.sides[0] <= 128 and max(fault.sides[1:]) <= 64
    assert any("64" in line and "memory" in line.lower() for line in log), log
    np.testing.assert_allclose(result, reference, atol=1e-5)


def test_out_of_memory_at_every_size_is_a_clear_error_and_the_next_job_runs(
    dncnn_file: Path,
) -> None:
    model = load_model(dncnn_file)
    pixels = _photo()
    fault = OutOfMemoryAbove(model.forward, limit=None, error=OOM_ERRORS["torch-oom"])
    with pytest.raises(OutOfMemoryError) as failed:
        _run(_with_faulty_call(model, fault), pixels, RunContext(device="cpu", tile=128))
    assert failed.value.exit_code == 5 and "\n" not in str(failed.value)
    assert len(fault.sides) == 2 and 64 < fault.sides[0] <= 128 and fault.sides[1] <= 64
    reference = _run(model, pixels, RunContext(device="cpu"))
    assert reference.shape == pixels.shape and np.isfinite(reference).all()


def test_the_command_recovers_from_out_of_memory(
    tmp_path: Path,
    dncnn_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    photo = tmp_path / "photo.png"
    PILImage.fromarray(np.rint(_photo() * 255).astype(np.uint8)).save(photo)
    model_args = ["--engine", "model", "--model", str(dncnn_file), "--param", "sigma=0"]
    reference = tmp_path / "reference.png"
    assert main(["run", "denoise", str(photo), "-o", str(reference), *model_args]) == 0

    faults: list[OutOfMemoryAbove] = []
    real_load = executor.load_model

    def load(path: Path) -> LoadedModel:
        faults.append(OutOfMemoryAbove(lambda *a: torch.empty(0), 64, OOM_ERRORS["torch-oom"]))
        return _with_faulty_call(real_load(path), faults[-1])

    monkeypatch.setattr(executor, "load_model", load)
    out = tmp_path / "out.png"
    argv = ["run", "denoise", str(photo), "-o", str(out), *model_args, "--tile", "128"]
    assert main(argv) == 0, capsys.readouterr().err

    assert faults and 64 < faults[0].sides[0] <= 128 and max(faults[0].sides[1:]) <= 64
    difference = np.abs(read_png(out).astype(int) - read_png(reference).astype(int))
    assert difference.max() <= 1


def test_half_precision_overflow_is_redone_in_float32(dncnn_file: Path) -> None:
    """A model whose half-precision output holds NaN is run again in float32 (on CUDA this is
    fp16/bf16; here bfloat16 autocast on the CPU stands in for it)."""
    model = load_model(dncnn_file)
    pixels = _photo()[:64, :64]
    reference = _run(model, pixels, RunContext(device="cpu"))

    def overflowing(module: torch.nn.Module, x: torch.Tensor, cond: Any) -> torch.Tensor:
        out = model.forward(module, x, cond)
        return out * torch.nan if torch.is_autocast_enabled("cpu") else out

    overflowing_model = dataclasses.replace(model, forward=overflowing)
    result = _run(overflowing_model, pixels, RunContext("cpu", precision="bf16"))
    assert np.isfinite(result).all()
    np.testing.assert_allclose(result, reference, atol=1e-6)
