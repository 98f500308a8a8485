"""A rectangle on the photo, drawn by dragging with the region tool (the part of the photo an
engine estimates from, such as the blur of a shaken photo)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from studio.ui.theme import ACCENT

MIN_REGION_SIDE = 8
"""A drag shorter than this (image pixels) on either side draws no region."""


class RegionItem(QGraphicsRectItem):
    """The region as a dashed rectangle over the photo (scene units are image pixels)."""

    def __init__(self) -> None:
        super().__init__()
        pen = QPen(QColor(ACCENT), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)  # as thick at any zoom
        self.setPen(pen)
        self.setBrush(QColor(255, 255, 255, 24))
        self._start: QPointF | None = None
        self._bounds = QRectF()
        self.hide()

    def show_region(self, region: QRect | None) -> None:
        """Show `region` (image pixels), or nothing."""
        if region is None or region.isEmpty():
            self.hide()
            return
        self.setRect(QRectF(region))
        self.show()

    @property
    def drawing(self) -> bool:
        return self._start is not None

    def begin(self, point: QPointF, bounds: QRectF) -> None:
        """Start a drag at `point`, kept inside `bounds` (the photo)."""
        self._bounds = bounds
        self._start = self._inside(point)
        self.setRect(QRectF(self._start, self._start))
        self.show()

    def drag_to(self, point: QPointF) -> None:
        if self._start is not None:
            self.setRect(QRectF(self._start, self._inside(point)).normalized())

    def end(self) -> QRect | None:
        """Finish the drag: the region in whole image pixels, or None for a click or a drag
        too small to estimate from."""
        self._start = None
        region = self.rect().toAlignedRect().intersected(self._bounds.toAlignedRect())
        if min(region.width(), region.height()) < MIN_REGION_SIDE:
            return None
        return region

    def _inside(self, point: QPointF) -> QPointF:
        bounds = self._bounds
        x = min(max(point.x(), bounds.left()), bounds.right())
        y = min(max(point.y(), bounds.top()), bounds.bottom())
        return QPointF(x, y)
