"""An open photo: its history of applied operations, its mask, hints, brackets and style."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRect, Signal
from PySide6.QtGui import QColor, QImage

from studio.core.image import Image
from studio.ui.display import thumbnail, to_bgra, to_qimage
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
        channels = "grey" if self.image.channels == 1 else "RGB"
        return f"{self.image.width} × {self.image.height} · {depth} · {channels}"


def make_step(label: str, image: Image, **details: Any) -> Step:
    """Build a step, converting for display; call it off the GUI thread for big images."""
    display = to_bgra(image)
    return Step(label, image, display, thumbnail(display), **details)


def crop_image(image: Image, rect: QRect) -> Image:
    """The part of `image` inside `rect` (image pixels), metadata kept."""
    y0, y1, x0, x1 = rect.top(), rect.bottom() + 1, rect.left(), rect.right() + 1
    alpha = image.alpha[y0:y1, x0:x1].copy() if image.alpha is not None else None
    return Image(np.ascontiguousarray(image.pixels[y0:y1, x0:x1]), image.meta, alpha)


class Document(QObject):
    """A photo being worked on, with linear undo/redo over its steps."""

    sig_steps_changed = Signal()
    """A step was added, undone, redone or chosen."""
    sig_brackets_changed = Signal()
    """The HDR bracket list changed."""

    def __init__(
        self,
        path: Path | None,
        original: Step,
        parent: QObject | None = None,
        *,
        name: str = "",
        brackets: list[Image] | None = None,
    ) -> None:
        super().__init__(parent)
        self.path = path
        self.name = name or (path.name if path is not None else original.label)
        self.steps: list[Step] = [original]
        self.index = 0
        self.brackets: list[Image] = brackets if brackets is not None else [original.image]
        self.style: Image | None = None
        self.mask = PaintLayer(original.image.width, original.image.height, MASK_COLOUR, self)
        self.hints = PaintLayer(
            original.image.width, original.image.height, QColor(255, 255, 255), self
        )

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
        """Add `step` after the current one, dropping any steps that were undone."""
        del self.steps[self.index + 1 :]
        self.steps.append(step)
        self.index = len(self.steps) - 1
        self._fit_layers()
        self.sig_steps_changed.emit()

    def go_to(self, index: int) -> None:
        if 0 <= index < len(self.steps) and index != self.index:
            self.index = index
            self._fit_layers()
            self.sig_steps_changed.emit()

    def can_undo(self) -> bool:
        return self.index > 0

    def can_redo(self) -> bool:
        return self.index < len(self.steps) - 1

    def undo(self) -> None:
        self.go_to(self.index - 1)

    def redo(self) -> None:
        self.go_to(self.index + 1)

    def set_brackets(self, images: list[Image]) -> None:
        self.brackets = images
        self.sig_brackets_changed.emit()

    def set_exposure_time(self, index: int, seconds: float | None) -> None:
        image = self.brackets[index]
        meta = dataclasses.replace(image.meta, exposure_time=seconds)
        self.brackets[index] = Image(image.pixels, meta, image.alpha)
        self.sig_brackets_changed.emit()

    def _fit_layers(self) -> None:
        """A result of another size gets fresh, empty layers of its size."""
        image = self.current.image
        if (self.mask.width, self.mask.height) != (image.width, image.height):
            self.mask.deleteLater()
            self.hints.deleteLater()
            self.mask = PaintLayer(image.width, image.height, MASK_COLOUR, self)
            self.hints = PaintLayer(image.width, image.height, QColor(255, 255, 255), self)
