"""The job worker: one long-lived thread that owns the compute device and the model cache.

Jobs run one at a time from a queue. Each job is a generator (`run_job`, or a batch run);
every `Progress` it yields becomes a signal, and a cancel request closes the generator at its
next yield. Whatever a job raises fails that job only: the worker carries on with the next.
"""

from __future__ import annotations

import gc
import itertools
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PySide6.QtCore import QThread, Signal

from studio.core.errors import CancelledError, DeviceError, StudioError
from studio.core.protocol import Progress, RunContext, Session
from studio.ui.settings import precision_setting
from studio.ui.warmup import describe_compute_device

JobGenerator = Generator[Any, None, Any]

_PROGRESS_INTERVAL_S = 0.04
_PREVIEW_INTERVAL_S = 0.25
_ids = itertools.count(1)


def _unchanged(value: Any) -> Any:
    return value


@dataclass
class WorkerJob:
    """What the worker runs: `start(ctx)` makes the generator, `finish(result)` post-processes.

    `finish` and `preview` run on the worker thread, so converting a result for display never
    blocks the window. Preview jobs replace each other: only the newest one matters.
    """

    start: Callable[[RunContext], JobGenerator]
    finish: Callable[[Any], Any] = _unchanged
    preview: Callable[[Progress], Any] | None = None
    is_preview: bool = False
    model_path: Path | None = None
    id: int = field(default_factory=lambda: next(_ids))
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    ran_s: float = 0.0
    """Seconds the job ran on the worker thread (set when it ends), however busy the window."""


class JobWorker(QThread):
    """Runs `WorkerJob`s one at a time; talks to the window only through its signals."""

    sig_job_started = Signal(int)
    """A job began running: (job id)."""
    sig_job_progressed = Signal(int, object)
    """A job made progress: (job id, Progress without its preview)."""
    sig_job_previewed = Signal(int, object)
    """A job produced a partial result: (job id, whatever `WorkerJob.preview` returned)."""
    sig_job_event = Signal(int, object)
    """A job yielded something other than Progress (e.g. batch item events)."""
    sig_job_logged = Signal(int, str)
    """A job wrote a log line: (job id, line)."""
    sig_job_reported = Signal(int, object)
    """A job about to finish left facts in its context's report: (job id, report dict)."""
    sig_job_finished = Signal(int, object)
    """A job completed: (job id, what `WorkerJob.finish` returned)."""
    sig_job_failed = Signal(int, str, str)
    """A job failed: (job id, user-facing message, details)."""
    sig_job_cancelled = Signal(int)
    """A job stopped at the user's request, or was dropped before it started."""
    sig_device_described = Signal(str)
    """The compute device is known: (e.g. 'NVIDIA H100 (79 GB)' or 'CPU (24 GB RAM)')."""

    def __init__(self, device: str = "auto") -> None:
        super().__init__()
        self.setObjectName("studio-worker")
        self.session = Session(device=device, precision=precision_setting())
        self._warm_up_requested = False
        self._queue: deque[WorkerJob] = deque()
        self._condition = threading.Condition()
        self._current: WorkerJob | None = None
        self._stopping = False

    # -- called from the GUI thread ---------------------------------------------------------

    def submit(self, job: WorkerJob) -> int:
        """Queue `job` (a preview goes first and replaces older previews); returns its id."""
        dropped: list[WorkerJob] = []
        with self._condition:
            if job.is_preview:
                dropped = [queued for queued in self._queue if queued.is_preview]
                for queued in dropped:
                    self._queue.remove(queued)
                if self._current is not None and self._current.is_preview:
                    self._current.cancel_requested.set()
                self._queue.appendleft(job)
            else:
                self._queue.append(job)
            self._condition.notify()
        for queued in dropped:
            self.sig_job_cancelled.emit(queued.id)
        return job.id

    def cancel(self, job_id: int) -> None:
        """Drop a queued job, or stop the running one at its next progress step."""
        with self._condition:
            queued = next((job for job in self._queue if job.id == job_id), None)
            if queued is not None:
                self._queue.remove(queued)
            elif self._current is not None and self._current.id == job_id:
                self._current.cancel_requested.set()
        if queued is not None:
            self.sig_job_cancelled.emit(job_id)

    def request_warm_up(self) -> None:
        """Import torch and find the device before the next job (once); then
        `sig_device_described` says which device jobs use."""
        with self._condition:
            self._warm_up_requested = True
            self._condition.notify()

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._condition:
            return len(self._queue) + (self._current is not None)

    def shutdown(self) -> None:
        """Cancel everything, stop the thread and wait for it (the running job stops at its
        next progress step)."""
        with self._condition:
            self._stopping = True
            self._queue.clear()
            if self._current is not None:
                self._current.cancel_requested.set()
            self._condition.notify()
        self.wait()

    # -- the worker thread ------------------------------------------------------------------

    def run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            if job == "warm-up":
                self._emit_device()
                continue
            try:
                self._run(job)
            finally:
                with self._condition:
                    self._current = None

    def _emit_device(self) -> None:
        try:
            description = describe_compute_device(self.session.device)
        except Exception as err:  # a broken torch install must not stop the worker
            description = f"CPU (device check failed: {err})"
        self.sig_device_described.emit(description)

    def _next_job(self) -> WorkerJob | Literal["warm-up"] | None:
        with self._condition:
            while not self._queue and not self._stopping and not self._warm_up_requested:
                self._condition.wait()
            if self._stopping:
                return None
            if self._warm_up_requested:
                self._warm_up_requested = False
                return "warm-up"
            self._current = self._queue.popleft()
            return self._current

    def _run(self, job: WorkerJob) -> None:
        started = time.perf_counter()
        self.sig_job_started.emit(job.id)
        ctx = self.session.context(
            job.model_path, lambda line: self.sig_job_logged.emit(job.id, line)
        )
        failure: tuple[str, str] | None = None
        device_failed = False
        try:
            finished, result = self._drive(job, ctx)
            if not finished:
                self.sig_job_cancelled.emit(job.id)
                return
            payload = job.finish(result)
        except CancelledError:
            self.sig_job_cancelled.emit(job.id)
        except BaseException as err:  # the worker survives anything a job throws
            failure, device_failed = describe_error(err), isinstance(err, DeviceError)
        else:
            job.ran_s = time.perf_counter() - started
            if ctx.report:
                self.sig_job_reported.emit(job.id, dict(ctx.report))
            self.sig_job_finished.emit(job.id, payload)
        if failure is not None:
            _recover_memory()  # after the except block, whose traceback held the job's memory
            self.sig_job_failed.emit(job.id, *failure)
        if device_failed:  # the GPU was set aside: the window shows the CPU now
            self._emit_device()

    def _drive(self, job: WorkerJob, ctx: RunContext) -> tuple[bool, Any]:
        """Run the generator to its end, or close it at the first yield after a cancel."""
        if job.cancel_requested.is_set():
            return False, None
        generator = job.start(ctx)
        last_progress = last_preview = 0.0
        try:
            while True:
                try:
                    item = next(generator)
                except StopIteration as stop:
                    return True, stop.value
                if job.cancel_requested.is_set():
                    return False, None
                if not isinstance(item, Progress):
                    self.sig_job_event.emit(job.id, item)
                    continue
                now = time.perf_counter()
                wants_preview = item.preview is not None and job.preview is not None
                if wants_preview and now - last_preview >= _PREVIEW_INTERVAL_S:
                    last_preview = now
                    self.sig_job_previewed.emit(job.id, job.preview(item))  # type: ignore[misc]
                if now - last_progress >= _PROGRESS_INTERVAL_S or _starts_or_ends_a_stage(item):
                    last_progress = now
                    bare = Progress(item.done, item.total, item.message)
                    self.sig_job_progressed.emit(job.id, bare)
        finally:
            generator.close()


def _starts_or_ends_a_stage(progress: Progress) -> bool:
    """Steps the window always shows, however soon after the last: a stage's first (what the
    job does now, perhaps for long) and its last."""
    return progress.done == 0 or progress.done >= progress.total


def describe_error(err: BaseException) -> tuple[str, str]:
    """The one-line message a photographer sees, and the technical details."""
    details = "".join(traceback.format_exception(err))
    if isinstance(err, StudioError):
        return err.window_text, details
    if _is_gpu_out_of_memory(err):
        return (
            "The GPU ran out of memory. Try a smaller tile size, or run this job on the CPU.",
            details,
        )
    if isinstance(err, MemoryError):
        return "Not enough memory for this image. Close other images or use a smaller one.", details
    return f"Unexpected error: {type(err).__name__}: {err}", details


def _is_gpu_out_of_memory(err: BaseException) -> bool:
    return type(err).__name__ == "OutOfMemoryError" or "out of memory" in str(err).lower()


def _recover_memory() -> None:
    """Give back what a failed job held, GPU memory included, so the next job can run."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # an emptied cache is a courtesy, not a requirement
        pass
