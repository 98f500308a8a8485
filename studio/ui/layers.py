"""Paintable layers over the image: the mask (inpainting, regions) and colour hints.

A layer is an ARGB image the size of the photo; its alpha channel is the mask value (or the
hint's opacity). Each brush stroke, clear, invert or load is one undoable command that keeps
only the pixels it changed, pushed on the undo stack the layer is given (its document's).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QRadialGradient, QUndoCommand, QUndoStack

from studio.core.image import FloatArray

_FORMAT = QImage.Format.Format_ARGB32_Premultiplied


class PaintLayer(QObject):
    """A brush-paintable layer with per-stroke undo."""

    sig_changed = Signal(QRect)
    """Pixels changed inside this rectangle (image coordinates)."""

    def __init__(
        self,
        width: int,
        height: int,
        colour: QColor,
        parent: QObject | None = None,
        *,
        undo_stack: QUndoStack | None = None,
        name: str = "",
    ):
        super().__init__(parent)
        self.colour = QColor(colour)
        self.name = name
        self.image = QImage(width, height, _FORMAT)
        self.image.fill(Qt.GlobalColor.transparent)
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack(self)
        self._committed = self.image.copy()
        self._stroke: _Stroke | None = None

    @property
    def width(self) -> int:
        return self.image.width()

    @property
    def height(self) -> int:
        return self.image.height()

    # -- strokes ------------------------------------------------------------------------------

    def begin_stroke(
        self,
        pos: QPointF,
        size: float,
        hardness: float = 1.0,
        erase: bool = False,
        colour: QColor | None = None,
    ) -> None:
        """Start a stroke of a round brush `size` pixels across; paints its first dab."""
        paint_colour = QColor(colour) if colour is not None else self.colour
        hardness = min(max(hardness, 0.0), 1.0)
        self._stroke = _Stroke(pos, max(1.0, size), hardness, erase, paint_colour)
        self._paint_dabs([pos])

    def stroke_to(self, pos: QPointF) -> None:
        """Continue the stroke to `pos`, with dabs spaced evenly along the way."""
        stroke = self._stroke
        if stroke is None:
            return
        spacing = max(1.0, stroke.size * 0.15)
        dx, dy = pos.x() - stroke.last.x(), pos.y() - stroke.last.y()
        steps = int(math.hypot(dx, dy) // spacing)
        if steps == 0:
            return
        dabs = [
            QPointF(stroke.last.x() + dx * i / steps, stroke.last.y() + dy * i / steps)
            for i in range(1, steps + 1)
        ]
        self._paint_dabs(dabs)
        stroke.last = dabs[-1]

    def end_stroke(self) -> None:
        """Commit the stroke as one undo step."""
        stroke, self._stroke = self._stroke, None
        if stroke is None or stroke.rect.isEmpty():
            return
        self._push(stroke.rect, "Erase" if stroke.erase else "Paint")

    def _paint_dabs(self, centres: list[QPointF]) -> None:
        stroke = self._stroke
        assert stroke is not None
        radius = stroke.size / 2.0
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        if stroke.erase:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationOut)
        changed = QRect()
        for centre in centres:
            painter.setBrush(_brush(centre, radius, stroke.hardness, stroke.colour))
            painter.drawEllipse(centre, radius, radius)
            changed = changed.united(_bounds(centre, radius))
        painter.end()
        changed = changed.intersected(self.image.rect())
        stroke.rect = stroke.rect.united(changed)
        self.sig_changed.emit(changed)

    # -- whole-layer edits --------------------------------------------------------------------

    def clear(self) -> None:
        self.set_alpha(np.zeros((self.height, self.width), dtype=np.float32), "Clear")

    def invert(self) -> None:
        self.set_alpha(1.0 - self.alpha(), "Invert")

    def set_alpha(self, values: FloatArray, label: str = "Load") -> None:
        """Replace the layer by `values` (H, W) in [0, 1], painted in the layer's colour."""
        alpha = np.clip(np.asarray(values, dtype=np.float32) * 255.0 + 0.5, 0, 255)
        alpha = alpha.astype(np.uint8)
        rgba = np.empty((self.height, self.width, 4), dtype=np.uint8)
        for channel, value in enumerate(
            (self.colour.blue(), self.colour.green(), self.colour.red())
        ):
            rgba[..., channel] = (alpha.astype(np.uint16) * value // 255).astype(np.uint8)
        rgba[..., 3] = alpha
        _pixels(self.image)[:] = rgba
        self._push(self.image.rect(), label)
        self.sig_changed.emit(self.image.rect())

    def _push(self, rect: QRect, label: str) -> None:
        before = self._committed.copy(rect)
        after = self.image.copy(rect)
        _blit(self._committed, after, rect.topLeft())
        text = f"{self.name}: {label}" if self.name else label
        self.undo_stack.push(PatchCommand(self, rect, before, after, text))

    def _restore(self, patch: QImage, rect: QRect) -> None:
        _blit(self.image, patch, rect.topLeft())
        _blit(self._committed, patch, rect.topLeft())
        self.sig_changed.emit(rect)

    # -- reading ------------------------------------------------------------------------------

    def alpha(self) -> FloatArray:
        """The layer's coverage (H, W) float32 in [0, 1]: the mask."""
        return np.asarray(_pixels(self.image)[..., 3], dtype=np.float32) / np.float32(255.0)

    def rgba(self) -> FloatArray:
        """(H, W, 4) float32 RGBA, colours un-premultiplied: the colour hints."""
        bgra = _pixels(self.image).astype(np.float32)
        alpha = bgra[..., 3:4]
        rgb = np.where(alpha > 0, bgra[..., 2::-1] / np.maximum(alpha, 1.0), 0.0)
        return np.concatenate([rgb, alpha / 255.0], axis=2).astype(np.float32)

    def is_empty(self) -> bool:
        return not bool(_pixels(self.image)[..., 3].any())


class _Stroke:
    def __init__(
        self, pos: QPointF, size: float, hardness: float, erase: bool, colour: QColor
    ) -> None:
        self.last = pos
        self.size = size
        self.hardness = hardness
        self.erase = erase
        self.colour = colour
        self.rect = QRect()


class PatchCommand(QUndoCommand):
    """Swap the pixels of one rectangle between their states before and after an edit."""

    def __init__(
        self, layer: PaintLayer, rect: QRect, before: QImage, after: QImage, label: str
    ) -> None:
        super().__init__(label)
        self.layer = layer
        self._rect = rect
        self._before = before
        self._after = after
        self._applied = True  # pushed after the pixels were painted

    def undo(self) -> None:
        self.layer._restore(self._before, self._rect)
        self._applied = False

    def redo(self) -> None:
        if not self._applied:
            self.layer._restore(self._after, self._rect)
            self._applied = True


def _brush(centre: QPointF, radius: float, hardness: float, colour: QColor) -> QRadialGradient:
    gradient = QRadialGradient(centre, radius)
    transparent = QColor(colour)
    transparent.setAlpha(0)
    gradient.setColorAt(0.0, colour)
    gradient.setColorAt(min(hardness, 0.999), colour)
    gradient.setColorAt(1.0, transparent)
    return gradient


def _bounds(centre: QPointF, radius: float) -> QRect:
    return QRectF(
        centre.x() - radius - 1, centre.y() - radius - 1, 2 * radius + 2, 2 * radius + 2
    ).toAlignedRect()


def _blit(target: QImage, patch: QImage, at: object) -> None:
    painter = QPainter(target)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
    painter.drawImage(at, patch)  # type: ignore[call-overload]
    painter.end()


def _pixels(image: QImage) -> np.ndarray:
    """A writable (H, W, 4) BGRA view of a 32-bit QImage's pixels."""
    height, width = image.height(), image.width()
    buffer = np.frombuffer(image.bits(), dtype=np.uint8)
    return buffer.reshape(height, image.bytesPerLine())[:, : width * 4].reshape(height, width, 4)
