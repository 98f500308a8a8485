"""The job controller: turns a document and the inspector's values into jobs for the worker.

It owns the one `JobWorker` thread, remembers every job it queued with a typed state, and
reports what happened through typed signals. It holds no widgets: the window listens to it
and lays out the results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum, auto
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRect, QTimer, Signal

from studio.core.errors import BadInputError, StudioError, UsageError
from studio.core.image import FloatArray, Image
from studio.core.protocol import (
    HINTS,
    MASK,
    STYLE,
    EngineSpec,
    InputForm,
    InputValue,
    JobInputs,
    ReportFigure,
)
from studio.core.registry import Registry
from studio.core.stored import Result, as_image
from studio.engine.batch import BatchPlan, BatchSettings, run_batch
from studio.engine.jobs import JobRequest, check_inputs, run_job, validate_params
from studio.ui.display import pixels_to_bgra, to_qimage
from studio.ui.document import Document, Step, check_window_holds, crop_image, make_step
from studio.ui.icons import task_title
from studio.ui.worker import JobWorker, WorkerJob

PREVIEW_DELAY_MS = 250


class JobKind(Enum):
    """What a queued job is for."""

    RUN = auto()
    """The chosen engine on a whole document: its result becomes a step (or a document)."""
    PREVIEW = auto()
    """The chosen engine on the visible area: shown over the photo, never kept."""
    BATCH = auto()
    """A recipe over many files, written to a folder."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass
class JobRecord:
    """What the Progress panel shows of one job (or of a file that failed to open)."""

    id: int
    task: str
    engine: str
    subject: str
    device: str
    state: JobState = JobState.QUEUED
    fraction: float = 0.0
    message: str = ""
    started: float | None = None
    ended: float | None = None
    error: str = ""
    details: str = ""
    log: list[str] = field(default_factory=list)
    stage_started: float | None = None
    """When the bar last started over, for the job's next stage (deconvolving after estimating
    the blur, say)."""
    moved: float | None = None
    """When the bar last moved."""

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self._since(self.started)

    def set_fraction(self, fraction: float) -> None:
        """Move the bar; a bar that goes back begins a stage."""
        now = time.monotonic()
        if fraction < self.fraction:
            self.stage_started = now
        if fraction != self.fraction:
            self.moved = now
        self.fraction = fraction

    def eta(self) -> float | None:
        """Seconds left in the current stage: extrapolated from its progress when the bar last
        moved (the stages before it took their own time), counting down since; None once
        that runs out while the bar waits for a long step."""
        stage = self.started if self.stage_started is None else self.stage_started
        if self.state is not JobState.RUNNING or self.fraction <= 0.02 or stage is None:
            return None
        moved = time.monotonic() if self.moved is None else self.moved
        left = (moved - stage) * (1.0 - self.fraction) / self.fraction - self._since(moved)
        return left if left > 0 else None

    def _since(self, moment: float) -> float:
        return (self.ended or time.monotonic()) - moment


@dataclass(frozen=True)
class Choices:
    """What the user chose for the next job: engine, photo, parameters and model file."""

    spec: EngineSpec | None
    document: Document | None
    params: dict[str, Any]
    opacity: float
    only_in_mask: bool
    params_valid: bool
    unavailable_reason: str = ""
    model_path: Path | None = None
    preview_rect: QRect = field(default_factory=QRect)
    """The visible part of the photo, at most PREVIEW_MAX_SIDE pixels a side."""


@dataclass
class _Job:
    """What the controller remembers about a job it handed to the worker."""

    kind: JobKind
    label: str
    document: Document | None = None
    step: Step | None = None
    rect: QRect = field(default_factory=QRect)
    new_document: bool = False
    worker_job: WorkerJob | None = None
    figures: tuple[ReportFigure, ...] = ()
    engine: str = ""


class JobController(QObject):
    """Queues runs, previews and batches on the worker; emits what became of them."""

    sig_job_queued = Signal(object)
    """A run or batch was queued: (JobRecord)."""
    sig_job_started = Signal(int, str)
    """A run or batch began: (job id, label)."""
    sig_job_progressed = Signal(int, float, str)
    """A run or batch made progress: (job id, fraction done, message)."""
    sig_job_logged = Signal(int, str)
    """A job wrote a log line: (job id, line)."""
    sig_job_figure = Signal(int, str, object)
    """A run's engine reported a picture it declares (`EngineSpec.figures`), also kept on the
    run's document (`Document.figures`): (job id, title, 2-D array)."""
    sig_job_done = Signal(int, str, float)
    """A run or batch finished: (job id, label, seconds it ran on the worker)."""
    sig_job_failed = Signal(int, str, str, str)
    """A run or batch failed: (job id, label, message, details)."""
    sig_job_cancelled = Signal(int, str)
    """A run or batch was cancelled: (job id, label)."""
    sig_job_ended = Signal(int, str)
    """Any job (previews included) ended: (job id, 'done' | 'failed' | 'cancelled')."""
    sig_result_ready = Signal(object, object)
    """A run's result, to add to the document it ran on: (Document, Step)."""
    sig_document_made = Signal(str, object, object)
    """A multi-input run's result, to open as a new document: (name, Step, source Document)."""
    sig_partial_result = Signal(object, object)
    """A running job's partial result over its whole photo: (Document, QImage)."""
    sig_preview_ready = Signal(object, object, object)
    """A live preview's result: (Document, QImage, QRect in image pixels)."""
    sig_preview_message = Signal(str, bool)
    """What the live preview is doing, or why it failed: (text, is an error)."""
    sig_batch_event = Signal(int, object, str)
    """A batch item changed: (job id, BatchEvent, message)."""
    sig_batch_finished = Signal(object)
    """A batch ended normally: (BatchSummary)."""
    sig_batch_stopped = Signal(str)
    """A batch failed or was cancelled: (reason)."""
    sig_busy_changed = Signal()
    """Jobs were queued or ended (what Cancel can act on changed)."""

    def __init__(
        self,
        worker: JobWorker,
        choices: Callable[[], Choices],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.registry = Registry()
        self.device_description = "detecting…"
        self._choices = choices
        self._jobs: dict[int, _Job] = {}
        self._states: dict[int, JobState] = {}
        self._preview_id: int | None = None
        self._batch_id: int | None = None
        self.preview_enabled = False
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.run_preview)
        worker.sig_job_started.connect(self._on_started)
        worker.sig_job_progressed.connect(self._on_progressed)
        worker.sig_job_previewed.connect(self._on_previewed)
        worker.sig_job_event.connect(self._on_event)
        worker.sig_job_logged.connect(self.sig_job_logged)
        worker.sig_job_reported.connect(self._on_reported)
        worker.sig_job_finished.connect(self._on_finished)
        worker.sig_job_failed.connect(self._on_failed)
        worker.sig_job_cancelled.connect(self._on_cancelled)
        worker.sig_device_described.connect(self._on_device)

    # -- building requests --------------------------------------------------------------------

    def build_request(self, choices: Choices, rect: QRect | None = None) -> JobRequest:
        """The job for `choices`, on the whole image or on `rect` (image pixels)."""
        spec, document = _checked(choices)

        def crop(array: FloatArray) -> FloatArray:
            if rect is None:
                return array
            return np.ascontiguousarray(
                array[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]
            )

        def crop_img(image: Image) -> Image:
            return image if rect is None else crop_image(image, rect)

        images: tuple[Image, ...] = (crop_img(document.current.image),)
        if spec.merges_images and document.brackets:
            images = tuple(crop_img(image) for image in document.brackets)
        extras: dict[str, InputValue] = {}
        if spec.takes(MASK) and not document.mask.is_empty():
            extras[MASK.name] = crop(document.mask.alpha())
        if spec.takes(HINTS) and not document.hints.is_empty():
            extras[HINTS.name] = crop(document.hints.rgba())
        if spec.takes(STYLE) and document.style is not None:
            extras[STYLE.name] = document.style
        for name, picture in document.pictures.items():
            if any(use.kind.name == name for use in spec.inputs):
                extras[name] = picture
        drawn = document.region
        image = document.current.image
        area = rect if rect is not None else QRect(0, 0, image.width, image.height)
        for use in spec.inputs:
            if use.kind.form is InputForm.REGION and drawn is not None:
                extras[use.kind.name] = _region_mask(drawn, area)
        region = None
        if choices.only_in_mask and not spec.takes(MASK):
            if document.mask.is_empty():
                raise UsageError("Paint a mask first, or untick 'Only inside the painted mask'")
            region = crop(document.mask.alpha())
        inputs = JobInputs(images, extras)
        check_inputs(spec, inputs.given())
        return JobRequest(
            task=spec.task,
            inputs=inputs,
            engine=spec.id,
            params=choices.params,
            opacity=choices.opacity,
            region=region,
        )

    def device_for(self, spec: EngineSpec) -> str:
        """Engines declaring `uses_device` run on the worker's device; the others on the CPU."""
        return self.device_description if spec.uses_device else "CPU"

    # -- runs ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Queue the chosen engine on the whole current photo; returns the job id.

        Raises StudioError (with a sentence for the user) when something is missing.
        """
        choices = self._choices()
        request = self.build_request(choices)
        spec, document = _checked(choices)
        _check_result_size(spec, request)
        registry = self.registry
        label = f"{task_title(spec.task)} · {spec.name}"
        hdr = document.current.image.meta.is_float
        details = {"task": spec.task, "engine": spec.id, "params": dict(choices.params)}
        job = WorkerJob(
            start=lambda ctx: run_job(registry, request, ctx),
            model_path=choices.model_path,
            finish=lambda image: make_step(label, image, **details),
            preview=lambda progress: pixels_to_bgra(progress.preview, hdr),  # type: ignore[arg-type]
        )
        self._remember(
            job,
            _Job(
                JobKind.RUN,
                label,
                document,
                document.current,
                new_document=spec.merges_images,
                figures=spec.figures,
                engine=spec.id,
            ),
        )
        self.sig_job_queued.emit(
            JobRecord(job.id, spec.task, spec.name, document.name, self.device_for(spec))
        )
        self.cancel_preview()
        self.worker.submit(job)
        return job.id

    def cancel(self, job_id: int) -> None:
        self.worker.cancel(job_id)

    def cancel_current(self) -> bool:
        """Cancel the running job (or the newest queued one); False when there is none."""
        active = [i for i in self.active_ids() if self._states[i] is JobState.RUNNING]
        targets = active or self.active_ids()[-1:]
        for job_id in targets:
            self.worker.cancel(job_id)
        return bool(targets)

    def cancel_document(self, document: Document) -> None:
        """Cancel every job that would change `document` (it is being closed)."""
        for job_id, job in list(self._jobs.items()):
            if job.document is document:
                self.worker.cancel(job_id)

    def active_ids(self) -> list[int]:
        """Runs and batches queued or running, oldest first."""
        return [
            job_id
            for job_id, state in self._states.items()
            if state not in FINISHED_STATES and self._jobs[job_id].kind is not JobKind.PREVIEW
        ]

    # -- live preview -------------------------------------------------------------------------

    def set_preview_enabled(self, on: bool) -> None:
        self.preview_enabled = on
        if on:
            self.run_preview()
        else:
            self.cancel_preview()

    def schedule_preview(self) -> None:
        """Preview again shortly (settings or the view are still changing)."""
        if self.preview_enabled:
            self._preview_timer.start()

    def run_preview(self) -> int | None:
        """Run the chosen settings on the visible area, through the same `run_job`."""
        if not self.preview_enabled:
            return None
        choices = self._choices()
        document = choices.document
        rect = choices.preview_rect
        if document is None or rect.isEmpty():
            return None
        try:
            request = self.build_request(choices, rect)
        except StudioError as err:  # a missing input is shown, the preview just waits
            self.sig_preview_message.emit(f"Preview: {err.window_text}", True)
            return None
        registry = self.registry
        hdr = document.current.image.meta.is_float
        job = WorkerJob(
            start=lambda ctx: run_job(registry, request, ctx),
            model_path=choices.model_path,
            finish=lambda result: _preview_bgra(result, hdr),
            is_preview=True,
        )
        self._preview_id = job.id
        self._remember(job, _Job(JobKind.PREVIEW, "Preview", document, document.current, rect))
        self.worker.submit(job)
        return job.id

    def cancel_preview(self) -> None:
        self._preview_timer.stop()
        if self._preview_id is not None:
            self.worker.cancel(self._preview_id)
            self._preview_id = None

    # -- batch --------------------------------------------------------------------------------

    def start_batch(self, plan: BatchPlan, settings: BatchSettings, model_path: Any) -> int:
        registry = self.registry
        job = WorkerJob(
            start=lambda ctx: run_batch(registry, plan, settings, ctx), model_path=model_path
        )
        self._batch_id = job.id
        self._remember(job, _Job(JobKind.BATCH, settings.recipe.label))
        first = settings.recipe.steps[0]
        self.sig_job_queued.emit(
            JobRecord(
                job.id,
                first.task,
                f"Batch: {settings.recipe.label}",
                f"{len(plan.items)} image(s)",
                "CPU",
            )
        )
        self.worker.submit(job)
        return job.id

    def cancel_batch(self) -> None:
        if self._batch_id is not None:
            self.worker.cancel(self._batch_id)

    # -- the worker's signals -----------------------------------------------------------------

    def _remember(self, worker_job: WorkerJob, job: _Job) -> None:
        job.worker_job = worker_job
        self._jobs[worker_job.id] = job
        self._states[worker_job.id] = JobState.QUEUED
        self.sig_busy_changed.emit()

    def _on_device(self, description: str) -> None:
        self.device_description = description

    def _on_started(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        self._states[job_id] = JobState.RUNNING
        if job.kind is not JobKind.PREVIEW:
            self.sig_job_started.emit(job_id, job.label)

    def _on_progressed(self, job_id: int, progress: Any) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        if job.kind is JobKind.RUN:
            self.sig_job_progressed.emit(job_id, progress.fraction, progress.message)
        elif job.kind is JobKind.PREVIEW and job_id == self._preview_id:
            self.sig_preview_message.emit(f"Preview: {progress.message}", False)

    def _on_previewed(self, job_id: int, bgra: np.ndarray) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.document is None or job.document.current is not job.step:
            return
        image = job.document.current.image
        if bgra.shape[:2] == (image.height, image.width) and not job.new_document:
            self.sig_partial_result.emit(job.document, to_qimage(bgra))

    def _on_event(self, job_id: int, event: Any) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.kind is not JobKind.BATCH:
            return
        message = getattr(event, "reason", "") or type(event).__name__.removeprefix("Item").lower()
        label = getattr(getattr(event, "item", None), "label", "")
        self.sig_batch_event.emit(job_id, event, f"{label}: {message}" if label else message)

    def _end(self, job_id: int, state: JobState) -> _Job | None:
        job = self._jobs.pop(job_id, None)
        if job is not None:
            self._states[job_id] = state
        if job_id == self._preview_id:
            self._preview_id = None
        if job is not None and job.kind is JobKind.BATCH:
            self._batch_id = None
        return job

    def _on_reported(self, job_id: int, report: dict[str, Any]) -> None:
        job = self._jobs.get(job_id)
        for figure in job.figures if job is not None else ():
            value = report.get(figure.key)
            if isinstance(value, np.ndarray) and value.ndim == 2 and value.size:
                self.sig_job_figure.emit(job_id, figure.title, value)
                if job is not None and job.document is not None:
                    job.document.add_figure(job.engine, figure.title, value)

    def _on_finished(self, job_id: int, payload: Any) -> None:
        job = self._end(job_id, JobState.DONE)
        if job is None:
            return
        seconds = job.worker_job.ran_s if job.worker_job is not None else 0.0
        if job.kind is JobKind.RUN and job.document is not None:
            if job.new_document:
                self.sig_document_made.emit(_set_name(job.document), payload, job.document)
            else:
                self.sig_result_ready.emit(job.document, payload)
        elif job.kind is JobKind.PREVIEW:
            document = job.document
            if document is not None and document.current is job.step:
                self.sig_preview_ready.emit(document, to_qimage(payload), job.rect)
        elif job.kind is JobKind.BATCH:
            self.sig_batch_finished.emit(payload)
        if job.kind is not JobKind.PREVIEW:
            self.sig_job_done.emit(job_id, job.label, seconds)
        self._ended(job_id, JobState.DONE)

    def _on_failed(self, job_id: int, message: str, details: str) -> None:
        job = self._end(job_id, JobState.FAILED)
        if job is None:
            return
        if job.kind is JobKind.PREVIEW:
            self.sig_preview_message.emit(f"Preview failed: {message}", True)
        else:
            self.sig_job_failed.emit(job_id, job.label, message, details)
        if job.kind is JobKind.BATCH:
            self.sig_batch_stopped.emit(message)
        self._ended(job_id, JobState.FAILED)

    def _on_cancelled(self, job_id: int) -> None:
        job = self._end(job_id, JobState.CANCELLED)
        if job is None:
            return
        if job.kind is not JobKind.PREVIEW:
            self.sig_job_cancelled.emit(job_id, job.label)
        if job.kind is JobKind.BATCH:
            self.sig_batch_stopped.emit("Cancelled")
        self._ended(job_id, JobState.CANCELLED)

    def _ended(self, job_id: int, state: JobState) -> None:
        self.sig_busy_changed.emit()
        self.sig_job_ended.emit(job_id, state.value)


def _checked(choices: Choices) -> tuple[EngineSpec, Document]:
    """The engine and photo of `choices`, or a UsageError saying what is missing."""
    if choices.document is None:
        raise UsageError("Open an image first (File › Open, or drop one on the window)")
    if choices.spec is None:
        raise UsageError("Choose a task and an engine in the Models panel")
    if choices.unavailable_reason:
        raise UsageError(f"{choices.spec.name} is unavailable: {choices.unavailable_reason}")
    if not choices.params_valid:
        raise BadInputError("Fix the highlighted parameters in the Inspector first")
    return choices.spec, choices.document


def _region_mask(region: QRect, area: QRect) -> FloatArray:
    """`region` as a mask over `area` (both in image pixels): 1 inside the region, else 0."""
    mask = np.zeros((area.height(), area.width()), np.float32)
    inside = region.intersected(area).translated(-area.topLeft())
    mask[inside.top() : inside.bottom() + 1, inside.left() : inside.right() + 1] = 1.0
    return mask


def _check_result_size(spec: EngineSpec, request: JobRequest) -> None:
    """Refuse, before running, a result too big for the window (see `check_window_holds`)."""
    image = request.inputs.image
    if spec.result_size is not None:
        params = validate_params(spec, request.params)
        size = spec.result_size((image.height, image.width), params)
        if size is not None:
            check_window_holds(*size)


def _preview_bgra(result: Result, hdr: bool) -> np.ndarray:
    image = as_image(result)  # a preview is of the visible area: small
    return pixels_to_bgra(image.pixels, hdr or image.meta.is_float)


def _set_name(document: Document) -> str:
    """A name for what was made from a document's set of inputs (its brackets)."""
    names = [image.meta.source_path.stem for image in document.brackets if image.meta.source_path]
    if not names:
        return f"{document.name} (merged)"
    return names[0] if len(names) == 1 else f"{names[0]}–{names[-1]}"
