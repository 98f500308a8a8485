"""The window's worker thread under faults and a long run (pytest-qt).

Whatever a job throws fails that job only, with a one-line message and the traceback as details;
the next job runs. Two hundred jobs in a row (built-in and neural, some failing) leave no
picture alive.
"""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.neural import executor
from studio.engine.neural.arches.dncnn_residual import ResidualDnCNN
from studio.engine.neural.model import LoadedModel
from studio.engine.registry import build_registry
from tests.reliability.test_faults import FAULTY, GOOD, OOM_ERRORS, OutOfMemoryAbove

pytest.importorskip("pytestqt")
worker_module = pytest.importorskip("studio.ui.worker")
JobWorker, WorkerJob = worker_module.JobWorker, worker_module.WorkerJob


class Outcomes:
    """What the worker reported, by job id."""

    def __init__(self, worker: Any, keep_results: bool = True) -> None:
        self.finished: dict[int, Any] = {}
        self.failed: dict[int, tuple[str, str]] = {}
        self.cancelled: set[int] = set()
        self._keep = keep_results
        self._worker = worker
        worker.sig_job_finished.connect(self._finished)
        worker.sig_job_failed.connect(self._failed)
        worker.sig_job_cancelled.connect(self._cancelled)

    def close(self) -> None:
        """Stop listening (the signal connections would keep this object alive)."""
        self._worker.sig_job_finished.disconnect(self._finished)
        self._worker.sig_job_failed.disconnect(self._failed)
        self._worker.sig_job_cancelled.disconnect(self._cancelled)

    def _finished(self, job_id: int, payload: Any) -> None:
        self.finished[job_id] = payload if self._keep else None

    def _cancelled(self, job_id: int) -> None:
        self.cancelled.add(job_id)

    def _failed(self, job_id: int, message: str, details: str) -> None:
        self.failed[job_id] = (message, details)

    def ended(self) -> int:
        return len(self.finished) + len(self.failed) + len(self.cancelled)


@pytest.fixture
def worker(qtbot: Any) -> Any:
    thread = JobWorker(device="cpu")
    thread.start()
    yield thread
    thread.shutdown()
    assert thread.wait(10_000)


def _photo(seed: int = 0, side: int = 64) -> Image:
    pixels = np.random.default_rng(seed).random((side, side, 3), dtype=np.float32)
    return Image(pixels, ImageMeta())


def _job(registry: Any, engine: str, image: Image, model: Path | None = None, **params: Any) -> Any:
    """A job on the worker's session (its device and model cache), with its own model file."""
    request = JobRequest("denoise", JobInputs((image,)), engine, params)
    return WorkerJob(start=lambda ctx: run_job(registry, request, ctx), model_path=model)


@pytest.fixture(scope="module")
def dncnn_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "dncnn.pth"
    torch.save(ResidualDnCNN(3, 8, 4).state_dict(), path)
    return path


def test_every_fault_fails_only_its_job(
    qtbot: Any, worker: Any, dncnn_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = build_registry()
    for spec in (GOOD, *FAULTY.values()):
        registry.register(spec)
    image = _photo()
    outcomes = Outcomes(worker)
    faulty_ids = {name: worker.submit(_job(registry, name, image)) for name in sorted(FAULTY)}

    def interrupted(ctx: RunContext) -> Any:
        yield from ()
        raise KeyboardInterrupt

    faulty_ids["keyboard-interrupt"] = worker.submit(WorkerJob(start=interrupted))
    real_load = executor.load_model

    def always_out_of_memory(path: Path) -> LoadedModel:
        model = real_load(path)
        fault = OutOfMemoryAbove(model.forward, None, OOM_ERRORS["runtime-error"])
        return dataclasses.replace(model, forward=fault)

    with monkeypatch.context() as patched:
        patched.setattr(executor, "load_model", always_out_of_memory)
        big = _photo(side=160)
        faulty_ids["neural-oom"] = worker.submit(
            _job(registry, "model", big, dncnn_file, sigma=0.0)
        )
        qtbot.waitUntil(lambda: outcomes.ended() == len(faulty_ids), timeout=60_000)
    worker.session.cache.clear()  # drop the faulty model: the next job loads the real one
    good_id = worker.submit(_job(registry, "inverted", image))
    neural_id = worker.submit(_job(registry, "model", image, dncnn_file, sigma=0.0))
    qtbot.waitUntil(lambda: {good_id, neural_id} <= set(outcomes.finished), timeout=60_000)

    assert set(outcomes.failed) == set(faulty_ids.values())
    for name, job_id in faulty_ids.items():
        message, details = outcomes.failed[job_id]
        assert message.strip() and "\n" not in message, name
        assert "Traceback" in details, name
    assert "memory" in outcomes.failed[faulty_ids["neural-oom"]][0].lower()
    assert "NaN" in outcomes.failed[faulty_ids["nan"]][0]
    np.testing.assert_allclose(outcomes.finished[good_id].pixels, 1.0 - image.pixels)
    assert np.isfinite(outcomes.finished[neural_id].pixels).all()


def _live_images() -> int:
    """Images still reachable after a full collection: kept inputs or results show here, on
    any machine and under any load (a resident-memory figure would depend on both)."""
    gc.collect()
    return sum(isinstance(o, Image) for o in gc.get_objects())


SOAK_JOBS = 200
WARM_UP_JOBS = 50
FAIL_EVERY = 25  # a failure costs the worker a full garbage collection
NEURAL_EVERY = 8
# Neural jobs are small, as a CPU runs them slowly.
BUILT_IN_SIDE = 256
NEURAL_SIDE = 48


def _lazy_job(
    registry: Any, engine: str, seed: int, side: int, model: Path | None = None, **params: Any
) -> Any:
    """A job whose picture is made when it starts, so queued jobs hold no pixels."""

    def start(ctx: RunContext) -> Any:
        request = JobRequest("denoise", JobInputs((_photo(seed, side),)), engine, params)
        return run_job(registry, request, ctx)

    return WorkerJob(start=start, model_path=model)


def _soak_jobs(registry: Any, count: int, model: Path) -> list[Any]:
    """A mix like a session's: built-in jobs, neural jobs on a cached model, some failures."""
    jobs = []
    for index in range(count):
        if index % FAIL_EVERY == FAIL_EVERY - 1:
            jobs.append(_lazy_job(registry, "raises", index, BUILT_IN_SIDE))
        elif index % NEURAL_EVERY == 1:
            jobs.append(_lazy_job(registry, "model", index, NEURAL_SIDE, model, sigma=0.0))
        else:
            jobs.append(_lazy_job(registry, "gaussian", index, BUILT_IN_SIDE, sigma=2.0))
    return jobs


def _run_all(qtbot: Any, worker: Any, jobs: list[Any]) -> Outcomes:
    outcomes = Outcomes(worker, keep_results=False)
    for job in jobs:
        worker.submit(job)
    qtbot.waitUntil(lambda: outcomes.ended() == len(jobs), timeout=120_000)
    outcomes.close()
    return outcomes


def test_two_hundred_jobs_keep_no_picture_alive(qtbot: Any, worker: Any, dncnn_file: Path) -> None:
    registry = build_registry()
    registry.register(FAULTY["raises"])

    warm = _run_all(qtbot, worker, _soak_jobs(registry, WARM_UP_JOBS, dncnn_file))
    assert len(warm.failed) == WARM_UP_JOBS // FAIL_EVERY
    del warm
    before = _live_images()

    soak = _run_all(qtbot, worker, _soak_jobs(registry, SOAK_JOBS, dncnn_file))
    assert len(soak.finished) == SOAK_JOBS - SOAK_JOBS // FAIL_EVERY and not soak.cancelled
    del soak
    assert _live_images() <= before


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_two_hundred_neural_jobs_leave_gpu_memory_flat(qtbot: Any, dncnn_file: Path) -> None:
    thread = JobWorker(device="cuda")
    thread.start()
    try:
        registry = build_registry()
        registry.register(FAULTY["raises"])

        def jobs(count: int) -> list[Any]:
            return [
                _lazy_job(registry, "raises", index, 256)
                if index % FAIL_EVERY == FAIL_EVERY - 1
                else _lazy_job(registry, "model", index, 256, dncnn_file, sigma=0.0)
                for index in range(count)
            ]

        _run_all(qtbot, thread, jobs(WARM_UP_JOBS))
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        soak = _run_all(qtbot, thread, jobs(SOAK_JOBS))
        assert len(soak.finished) == SOAK_JOBS - SOAK_JOBS // FAIL_EVERY
        torch.cuda.synchronize()
        after = torch.cuda.memory_allocated()
        assert after - before <= 2**20, f"GPU memory grew {before} -> {after} bytes"
    finally:
        thread.shutdown()
        thread.wait(10_000)
