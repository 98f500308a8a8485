"""The operation protocol shared by the CLI, the UI worker and the tests.

An engine runs as a generator: it yields `Progress` at least once per tile or iteration and
returns its result `Image`. Closing the generator (``gen.close()``) cancels it; engines must
leave nothing behind when that happens (use ``try/finally`` for cleanup).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from studio.core.image import FloatArray, Image

TASKS = ("denoise", "deblur", "inpaint", "hdr", "colorize", "style", "upscale", "degrade")


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


class Params(BaseModel):
    """Base of every engine's parameter model: frozen, strict about unknown keys.

    Each field's `description` is the tooltip in the inspector and the CLI help.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoParams(Params):
    """For engines without parameters."""


@dataclass(frozen=True)
class JobInputs:
    """Everything an operation reads besides its parameters.

    `images` holds one image, or the exposure brackets for HDR. `mask` (H, W) float32 in [0, 1]
    marks pixels to fill (inpaint). `hints` (H, W, 4) RGBA float32: opaque pixels are colour
    hints (colorize). `style` is the style image (style transfer).
    """

    images: tuple[Image, ...]
    mask: FloatArray | None = None
    hints: FloatArray | None = None
    style: Image | None = None

    @property
    def image(self) -> Image:
        return self.images[0]


@dataclass
class RunContext:
    """How to run: device choice, tiling, the model file, and a cache shared between jobs."""

    device: str = "auto"
    tile: int | None = None
    model_path: Path | None = None
    cache: dict[Any, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda message: None


class Kind(StrEnum):
    BUILTIN = "built-in"
    NEURAL = "neural"


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""


AVAILABLE = Availability(True)


@dataclass(frozen=True)
class EngineSpec:
    """One way to do one task: what it is called, its parameters and how to run it.

    `run(inputs, params, ctx)` returns the operation generator. `available(ctx)` says whether
    it can run on this machine now (models installed, hints given...) and, when not, why.
    """

    task: str
    id: str
    name: str
    params: type[Params]
    run: Callable[[JobInputs, Any, RunContext], OpRun]
    description: str = ""
    kind: Kind = Kind.BUILTIN
    default: bool = False
    needs_mask: bool = False
    needs_style: bool = False
    multi_input: bool = False
    licence: str = ""
    gpu_recommended: bool = False
    available: Callable[[RunContext], Availability] = lambda ctx: AVAILABLE
