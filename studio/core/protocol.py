"""The operation protocol shared by the CLI, the UI worker and the tests.

An engine runs as a generator: it yields `Progress` at least once per tile or iteration and
returns its result `Image`. Closing the generator (``gen.close()``) cancels it; engines must
leave nothing behind when that happens (use ``try/finally`` for cleanup).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from studio.core.image import FloatArray, Image
from studio.core.stored import Result

TASKS = ("denoise", "deblur", "inpaint", "hdr", "colorize", "style", "upscale", "degrade")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Progress:
    """One step of a running operation; `preview` is an optional partial result."""

    done: int
    total: int
    message: str = ""
    preview: FloatArray | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


OpRun = Generator[Progress, None, Image]
ResultRun = Generator[Progress, None, Result]  # an engine's run: an enlargement's is stored
Size = tuple[int, int]


class Params(BaseModel):
    """Base of every engine's parameter model: frozen, strict about unknown keys.

    Each field's `description` is the tooltip in the inspector and the CLI help.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


def applies_when(**choices: tuple[Any, ...]) -> dict[str, Any]:
    """Field metadata (`json_schema_extra`): the parameter matters only while each named
    parameter holds one of the given values. The inspector hides it otherwise."""
    return {"applies_when": {name: list(values) for name, values in choices.items()}}


def field_applies(extra: object, values: Mapping[str, Any]) -> bool:
    """Whether a field with `json_schema_extra` = `extra` matters for these parameter values."""
    conditions = extra.get("applies_when") if isinstance(extra, dict) else None
    if not isinstance(conditions, dict):
        return True
    return all(values.get(name) in allowed for name, allowed in conditions.items())


class NoParams(Params):
    """For engines without parameters."""


class InputForm(StrEnum):
    """How an input besides the photo is held, read from a file and painted in the window."""

    BRACKETS = "brackets"  # more photos of the same scene: they join `JobInputs.images`
    IMAGE = "image"  # another picture, of any size: an `Image`
    MASK = "mask"  # (H, W) float32 in [0, 1] at the photo's size; white (1) is selected
    RGBA = "rgba"  # (H, W, 4) float32 at the photo's size: colours where opaque
    REGION = "region"  # held and read as MASK; drawn in the window as a rectangle


@dataclass(frozen=True)
class Missing:
    """What to tell a photographer when an input is missing: in the window and on the CLI."""

    window: str
    cli: str


@dataclass(frozen=True)
class InputKind:
    """A kind of input besides the photo.

    `name` is its key in `JobInputs.extras` and its command-line option (``--NAME FILE``, or
    ``--input NAME=FILE`` for kinds the CLI has no option for); `label` names it in the window
    and `help` says in one line what to give. `when_absent` says what an engine taking it as
    an option does without it.
    """

    name: str
    form: InputForm
    label: str
    help: str
    missing: Missing
    when_absent: str = ""


BRACKETS = InputKind(
    "brackets",
    InputForm.BRACKETS,
    "Exposure brackets",
    "several exposures of one scene, merged into one picture",
    Missing(
        window="Add at least two exposure brackets in the Inspector",
        cli="give at least two images, one per exposure",
    ),
)
MASK = InputKind(
    "mask",
    InputForm.MASK,
    "Mask",
    "grayscale mask, white = the area to fill",
    Missing(
        window="Paint the area to fill with the mask brush (B) first",
        cli="give a mask with --mask FILE (white = the area to fill)",
    ),
)
HINTS = InputKind(
    "hints",
    InputForm.RGBA,
    "Colour hints",
    "RGBA image of colour hints: opaque pixels give their colour",
    Missing(
        window="Paint some colour hints with the hint tool (I) first",
        cli="give colour hints with --hints FILE (an RGBA image, opaque where coloured)",
    ),
)
STYLE = InputKind(
    "style",
    InputForm.IMAGE,
    "Style image",
    "the painting or picture whose style to copy",
    Missing(
        window="Choose a style image in the Inspector first",
        cli="give a style image with --style FILE",
    ),
)
REFERENCE = InputKind(
    "reference",
    InputForm.IMAGE,
    "Reference photo",
    "a colour photo of a similar scene to take the colours from",
    Missing(
        window="Choose a colour reference photo in the Inspector first",
        cli="give a colour reference photo with --reference FILE",
    ),
)
ESTIMATION_REGION = InputKind(
    "estimation_region",
    InputForm.REGION,
    "Estimation region",
    "a part with sharp detail, blurred like the rest: the blur is estimated on its most"
    " detailed 768 × 768 px",
    Missing(
        window="Draw the estimation region with the region tool (R) first",
        cli="give an estimation region with --input estimation_region=FILE (white = the part)",
    ),
    when_absent="Automatic: the most detailed part of the photo",
)
INPUT_KINDS = (BRACKETS, MASK, HINTS, STYLE, REFERENCE)

InputValue = Image | FloatArray


@dataclass(frozen=True)
class JobInputs:
    """Everything an operation reads besides its parameters.

    `images` holds the photo, or the exposure brackets (`BRACKETS`). `extras` holds the other
    inputs by their kind's name: `Image` for `InputForm.IMAGE` kinds, arrays at the photo's size
    for `MASK` ((H, W) float32 in [0, 1]) and `RGBA` ((H, W, 4) float32) kinds. `region`
    (H, W) in [0, 1] is where the user wants the effect (the job applies it; blind deblur
    also estimates the blur there).
    """

    images: tuple[Image, ...]
    extras: Mapping[str, InputValue] = field(default_factory=dict)
    region: FloatArray | None = None

    @property
    def image(self) -> Image:
        return self.images[0]

    def given(self) -> frozenset[str]:
        """The names of the input kinds present (`BRACKETS` when there are several images)."""
        several = {BRACKETS.name} if len(self.images) > 1 else set()
        return frozenset(self.extras) | several

    def array(self, kind: InputKind) -> FloatArray | None:
        value = self.extras.get(kind.name)
        assert value is None or isinstance(value, np.ndarray), f"{kind.name} is not an array"
        return value

    def picture(self, kind: InputKind) -> Image | None:
        value = self.extras.get(kind.name)
        assert value is None or isinstance(value, Image), f"{kind.name} is not an image"
        return value

    @property
    def mask(self) -> FloatArray | None:
        return self.array(MASK)

    @property
    def hints(self) -> FloatArray | None:
        return self.array(HINTS)

    @property
    def style(self) -> Image | None:
        return self.picture(STYLE)

    @property
    def reference(self) -> Image | None:
        return self.picture(REFERENCE)


def _no_log(message: str) -> None:
    """Where a job's log lines go when nobody reads them."""


@dataclass(frozen=True)
class RunContext:
    """One job's context: its session's device choice, tile size, precision and cache (see
    `Session`), its own model file and log, and `report`, where an engine leaves facts about
    its run for the caller (blind deblur: `kernel`, the estimated kernel, and `kernel_size`).

    `precision` is 'auto' (half precision on a GPU only where it is safe for the output) or
    'fp32', 'fp16', 'bf16' to force one.
    """

    device: str = "auto"
    tile: int | None = None
    precision: str = "auto"
    model_path: Path | None = None
    cache: dict[Any, Any] = field(default_factory=dict)
    log: Callable[[str], None] = _no_log
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    """What the jobs of one session share: the device choice, tile size, precision and a cache
    (of loaded models...). Each job runs with its own `RunContext` from `context`."""

    device: str = "auto"
    tile: int | None = None
    precision: str = "auto"
    cache: dict[Any, Any] = field(default_factory=dict)

    def context(
        self, model_path: Path | None = None, log: Callable[[str], None] = _no_log
    ) -> RunContext:
        return RunContext(self.device, self.tile, self.precision, model_path, self.cache, log)


class Kind(StrEnum):
    BUILTIN = "built-in"
    NEURAL = "neural"


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""


AVAILABLE = Availability(True)


@dataclass(frozen=True)
class EngineInput:
    """An input an engine reads besides the photo; when `required` and absent, the kind's
    `missing` texts say so."""

    kind: InputKind
    required: bool = False


@dataclass(frozen=True)
class ReportFigure:
    """A 2-D array an engine leaves in `RunContext.report` under `key`, for the window to show
    as a small picture called `title` (blind deblur: the estimated kernel)."""

    key: str
    title: str


@dataclass(frozen=True)
class EngineSpec:
    """One way to do one task: what it is called, its parameters, its inputs and how to run it.

    `run(inputs, params, ctx)` returns the operation generator. `available(ctx)` says whether
    it can run on this machine now (models installed...) and, when not, why. `inputs` declares
    the inputs it reads besides the photo; with `needs_any_input`, at least one of them must be
    given and those texts say which ways there are. `uses_device` says it runs on the compute
    device (GPU when there is one); `gpu_recommended` that it is slow without one.
    `result_size(size, params)` gives the (height, width) of the result of a photo of `size`
    for engines whose result is not the photo's size (it returns None when that is unknown
    before running); engines that keep the size leave it None. `linear_light` engines get a
    camera RAW's linear pixels as they are; every other engine gets them sRGB-encoded, as
    models and filters made for ordinary photos expect. `figures` names the arrays of its
    run's report that the window shows beside the job.
    """

    task: str
    id: str
    name: str
    params: type[Params]
    run: Callable[[JobInputs, Any, RunContext], ResultRun]
    description: str = ""
    kind: Kind = Kind.BUILTIN
    default: bool = False
    inputs: tuple[EngineInput, ...] = ()
    needs_any_input: Missing | None = None
    uses_device: bool = False
    licence: str = ""
    gpu_recommended: bool = False
    available: Callable[[RunContext], Availability] = lambda ctx: AVAILABLE
    result_size: Callable[[Size, Any], Size | None] | None = None
    default_reason: str = ""
    linear_light: bool = False
    figures: tuple[ReportFigure, ...] = ()

    def takes(self, kind: InputKind) -> bool:
        return any(use.kind == kind for use in self.inputs)

    def input_of_form(self, form: InputForm) -> InputKind | None:
        """The first input kind of `form` it takes, if any."""
        return next((use.kind for use in self.inputs if use.kind.form is form), None)

    @property
    def changes_size(self) -> bool:
        """Whether its result has another size than the photo (no opacity or region then)."""
        return self.result_size is not None

    @property
    def merges_images(self) -> bool:
        """Whether it takes several photos of one scene (brackets) and makes one picture."""
        return any(use.kind.form is InputForm.BRACKETS for use in self.inputs)
