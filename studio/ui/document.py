"""An open photo: its history of applied operations, its mask, hints, brackets and style."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRect, Signal
from PySide6.QtGui import QColor, QImage, QUndoCommand, QUndoStack

from studio.core.errors import BadInputError
from studio.core.image import Image
from studio.core.imageio import pixel_limit
from studio.core.stored import Result, StoredImage, as_image
from studio.ui.display import thumbnail, to_bgra, to_qimage
from studio.ui.icons import CLEAR_REGION_ICON, REGION_ICON, STROKE_ICON
from studio.ui.layers import PaintLayer
from studio.ui.theme import MASK_COLOUR


@dataclass(frozen=True)
class Step:
    """One state of the photo: the original, or the result of an applied operation."""

    label: str
    image: Image
    display: np.ndarray
    thumb: np.ndarray
    task: str | None = None
    engine: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def qimage(self) -> QImage:
        return to_qimage(self.display)

    @property
    def size_text(self) -> str:
        depth = "float" if self.image.meta.is_float else f"{self.image.meta.bit_depth}-bit"
        if self.image.meta.is_linear_photo:
            depth += " linear"  # a camera RAW: the pixel values read out are linear light
        channels = "grey" if self.image.channels == 1 else "RGB"
        return f"{self.image.width} × {self.image.height} · {depth} · {channels}"


def check_window_holds(height: int, width: int) -> None:
    """Refuse a result bigger than the window opens (its pixels, its display and its undo
    history would not fit beside each other): Batch writes such results straight to a file."""
    limit = pixel_limit()
    if height * width > limit:
        raise BadInputError(
            f"The result would be {width} × {height} ({height * width / 1e6:.0f} MP), more "
            f"than the window holds ({limit / 1e6:.0f} MP): run it from the Batch panel, "
            "which writes it straight to a file"
        )


def window_image(result: Result) -> Image:
    """A job's result as the window holds it: float32 pixels, within `check_window_holds`."""
    if isinstance(result, StoredImage):
        check_window_holds(result.height, result.width)
    return as_image(result)


def make_step(label: str, result: Result, **details: Any) -> Step:
    """Build a step, converting for display; call it off the GUI thread for big images."""
    image = window_image(result)
    display = to_bgra(image)
    return Step(label, image, display, thumbnail(display), **details)


def crop_image(image: Image, rect: QRect) -> Image:
    """The part of `image` inside `rect` (image pixels), metadata kept."""
    y0, y1, x0, x1 = rect.top(), rect.bottom() + 1, rect.left(), rect.right() + 1
    alpha = image.alpha[y0:y1, x0:x1].copy() if image.alpha is not None else None
    return Image(np.ascontiguousarray(image.pixels[y0:y1, x0:x1]), image.meta, alpha)


class Document(QObject):
    """A photo being worked on: its steps, and one undo timeline of jobs, strokes and hints."""

    sig_steps_changed = Signal()
    """A step was added, undone or redone."""
    sig_brackets_changed = Signal()
    """The HDR bracket list changed."""
    sig_timeline_changed = Signal()
    """A job, stroke or hint was done, undone or redone."""
    sig_region_changed = Signal()
    """The region drawn with the region tool changed."""
    sig_figures_changed = Signal()
    """An engine reported a picture about this photo (`figures`)."""

    def __init__(
        self,
        path: Path | None,
        original: Step,
        parent: QObject | None = None,
        *,
        name: str = "",
        brackets: list[Image] | None = None,
        is_result: bool = False,
    ) -> None:
        super().__init__(parent)
        self.path = path
        self.name = name or (path.name if path is not None else original.label)
        self.steps: list[Step] = [original]
        self.index = 0
        self.brackets: list[Image] = brackets if brackets is not None else [original.image]
        self.style: Image | None = None
        self.pictures: dict[str, Image] = {}
        """Other picture inputs (a reference photo...) by input kind name."""
        self.undo_stack = QUndoStack(self)
        self.undo_stack.indexChanged.connect(self.sig_timeline_changed)
        self.mask, self.hints = self._new_layers(original.image)
        self.is_result = is_result
        """Made by a job (an HDR merge): even its first step is worth exporting."""
        self.exported: Step | None = None
        self.view: Any = None
        """Zoom and centre the canvas last showed this document with (None: fit)."""
        self._region: QRect | None = None
        self._region_on: tuple[int, int] = (0, 0)
        self.figures: dict[tuple[str, str], np.ndarray] = {}
        """The pictures engines reported on their last run on this photo (the estimated blur
        kernel), by (engine id, figure title)."""

    @property
    def current(self) -> Step:
        return self.steps[self.index]

    @property
    def before(self) -> Step:
        """What the current step was made from (the original for the original)."""
        return self.steps[max(self.index - 1, 0)]

    @property
    def original(self) -> Step:
        return self.steps[0]

    def source_paths(self) -> tuple[Path, ...]:
        """Files this document was read from: exports must never overwrite them."""
        paths = [image.meta.source_path for image in self.brackets]
        if self.path is not None:
            paths.append(self.path)
        return tuple(dict.fromkeys(p for p in paths if p is not None))

    def apply(self, step: Step) -> None:
        """Add `step` after the current one, as one undoable entry of the timeline."""
        self.undo_stack.push(_StepCommand(self, step))

    def has_unexported_result(self) -> bool:
        """The photo shown is a job's result that was not written to a file."""
        is_result = self.index > 0 or self.is_result
        return is_result and self.exported is not self.current

    def mark_exported(self, step: Step) -> None:
        self.exported = step

    @property
    def region(self) -> QRect | None:
        """The region drawn on the photo (image pixels), if any and if the photo shown still
        has the size it had then (a step that resized it leaves none)."""
        image = self.current.image
        if self._region is None or self._region_on != (image.width, image.height):
            return None
        return self._region

    def set_region(self, region: QRect | None) -> None:
        """Draw `region` (image pixels, inside the photo shown), or clear it, as one undoable
        entry of the timeline."""
        if region != self.region:
            self.undo_stack.push(_RegionCommand(self, region))

    def _place_region(self, region: QRect | None, on: tuple[int, int]) -> None:
        self._region, self._region_on = region, on
        self.sig_region_changed.emit()

    def add_figure(self, engine: str, title: str, array: np.ndarray) -> None:
        self.figures[(engine, title)] = array
        self.sig_figures_changed.emit()

    def set_brackets(self, images: list[Image]) -> None:
        self.brackets = images
        self.sig_brackets_changed.emit()

    def set_exposure_time(self, index: int, seconds: float | None) -> None:
        image = self.brackets[index]
        meta = dataclasses.replace(image.meta, exposure_time=seconds)
        self.brackets[index] = Image(image.pixels, meta, image.alpha)
        self.sig_brackets_changed.emit()

    def _new_layers(self, image: Image) -> tuple[PaintLayer, PaintLayer]:
        size = image.width, image.height
        stack = self.undo_stack
        mask = PaintLayer(*size, MASK_COLOUR, self, undo_stack=stack, name="Mask")
        hints = PaintLayer(*size, QColor(255, 255, 255), self, undo_stack=stack, name="Hints")
        return mask, hints

    def _show(self, index: int, layers: tuple[PaintLayer, PaintLayer]) -> None:
        self.index = index
        self.mask, self.hints = layers
        self.sig_steps_changed.emit()


class _StepCommand(QUndoCommand):
    """A job's result on the timeline: redo shows it, undo goes back to the step before.

    A result of another size gets fresh, empty layers of its size; undo brings back the old.
    """

    def __init__(self, document: Document, step: Step) -> None:
        super().__init__(step.label)
        self.document = document
        self.step = step
        self._previous = document.index
        self._layers_before = (document.mask, document.hints)
        same_size = (document.mask.width, document.mask.height) == (
            step.image.width,
            step.image.height,
        )
        self._layers_after = self._layers_before if same_size else document._new_layers(step.image)

    def redo(self) -> None:
        document = self.document
        del document.steps[self._previous + 1 :]
        document.steps.append(self.step)
        document._show(len(document.steps) - 1, self._layers_after)

    def undo(self) -> None:
        self.document._show(self._previous, self._layers_before)


class _RegionCommand(QUndoCommand):
    """Drawing or clearing the region: undo brings back the region there was before."""

    def __init__(self, document: Document, region: QRect | None) -> None:
        drawn = region is not None
        super().__init__("Draw region" if drawn else "Clear region")
        self.icon_name = REGION_ICON if drawn else CLEAR_REGION_ICON
        self.document = document
        self._before = (document._region, document._region_on)
        image = document.current.image
        self._after = (region, (image.width, image.height))

    def redo(self) -> None:
        self.document._place_region(*self._after)

    def undo(self) -> None:
        self.document._place_region(*self._before)


def step_of(command: QUndoCommand | None) -> Step | None:
    """The result a timeline entry shows (None for strokes, hints and regions)."""
    return command.step if isinstance(command, _StepCommand) else None


def icon_name_of(command: QUndoCommand) -> str:
    """The icon of a timeline entry that shows no result: the region tool's for a region
    drawn or cleared, a brush for strokes and hints."""
    return command.icon_name if isinstance(command, _RegionCommand) else STROKE_ICON
