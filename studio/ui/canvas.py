"""The canvas: a zoomable, pannable view of the photo with before/after, preview and masks.

Zoom follows the cursor (wheel, trackpad pinch); panning is a drag with the hand tool, the
middle button, or space held down. Below 100 % the image is smoothed; at 100 % and above every
image pixel is drawn as a sharp block, so what you judge is what is in the file.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QCursor,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QNativeGestureEvent,
    QPainter,
    QPen,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.ui.canvas_region import RegionItem
from studio.ui.layers import PaintLayer
from studio.ui.theme import ACCENT, CANVAS_BACKGROUND

MIN_ZOOM = 0.02
MAX_ZOOM = 32.0
ZOOM_STEP = 2**0.5
_HANDLE_GRAB_PX = 8


class Tool(StrEnum):
    PAN = "pan"
    BRUSH = "brush"
    ERASER = "eraser"
    HINT = "hint"
    REGION = "region"


class Compare(StrEnum):
    AFTER = "after"
    BEFORE = "before"
    SPLIT = "split"


class ImageItem(QGraphicsItem):
    """Draws 'before' left of the split and 'after' (with any live-preview patch) right of it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.preview: QImage | None = None
        self.preview_rect = QRect()
        self.compare = Compare.AFTER
        self.split = 0.5
        self.display_size: QSize | None = None

    def boundingRect(self) -> QRectF:
        if self.display_size is not None:
            return QRectF(QPointF(0, 0), QSizeF(self.display_size))
        image = self.after or self.before
        return QRectF(image.rect()) if image is not None else QRectF()

    @property
    def split_x(self) -> float:
        return self.boundingRect().width() * self.split

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        zoom = painter.worldTransform().m11()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 1.0)
        exposed = option.exposedRect.toAlignedRect()
        bounds = self.boundingRect()
        if self.compare is Compare.BEFORE:
            self._draw(painter, self.before, exposed, with_preview=False)
        elif self.compare is Compare.AFTER:
            self._draw(painter, self.after, exposed, with_preview=True)
        else:
            split = round(self.split_x)
            left = exposed.intersected(QRect(0, 0, split, int(bounds.height())))
            right = exposed.intersected(
                QRect(split, 0, int(bounds.width()) - split, int(bounds.height()))
            )
            self._draw(painter, self.before, left, with_preview=False)
            self._draw(painter, self.after, right, with_preview=True)

    def _draw(
        self, painter: QPainter, image: QImage | None, area: QRect, with_preview: bool
    ) -> None:
        if image is None or area.isEmpty():
            return
        bounds = self.boundingRect()
        if image.size() != bounds.size().toSize():  # a 'before' of another size (upscale)
            sx, sy = image.width() / bounds.width(), image.height() / bounds.height()
            scaled = QRectF(area.x() * sx, area.y() * sy, area.width() * sx, area.height() * sy)
            painter.drawImage(QRectF(area), image, scaled)
            return
        area = area.intersected(image.rect())
        painter.drawImage(area, image, area)
        if with_preview and self.preview is not None:
            patch = area.intersected(self.preview_rect)
            if not patch.isEmpty():
                source = patch.translated(-self.preview_rect.topLeft())
                painter.drawImage(patch, self.preview, source)


class LayerItem(QGraphicsItem):
    """Draws a paint layer (mask or hints) over the image."""

    def __init__(self, opacity: float) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setOpacity(opacity)
        self.layer: PaintLayer | None = None
        self.tint: QColor | None = None
        """Draw the layer's coverage in this colour (None: the layer's own colours)."""

    def set_layer(self, layer: PaintLayer | None) -> None:
        if self.layer is not None:
            self.layer.sig_changed.disconnect(self._on_changed)
        self.prepareGeometryChange()
        self.layer = layer
        if layer is not None:
            layer.sig_changed.connect(self._on_changed)
        self.update()

    def _on_changed(self, rect: QRect) -> None:
        self.update(QRectF(rect))

    def boundingRect(self) -> QRectF:
        return QRectF(self.layer.image.rect()) if self.layer is not None else QRectF()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self.layer is None:
            return
        zoom = painter.worldTransform().m11()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 1.0)
        area = option.exposedRect.toAlignedRect().intersected(self.layer.image.rect())
        image = self.layer.image
        if self.tint is not None:
            image = image.copy(area)
            tinter = QPainter(image)
            tinter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
            tinter.fillRect(image.rect(), self.tint)
            tinter.end()
            painter.drawImage(area, image)
            return
        painter.drawImage(area, image, area)


class CanvasView(QGraphicsView):
    """The photo view; emits what the user does, holds no document state of its own."""

    sig_files_dropped = Signal(list)
    """Image files or folders were dropped: (list of paths as str)."""
    sig_view_changed = Signal()
    """The zoom or the visible part of the image changed."""
    sig_zoom_changed = Signal(float)
    """The zoom changed: (zoom, 1.0 = 100 %)."""
    sig_cursor_moved = Signal(int, int)
    """The cursor is over image pixel (x, y); (-1, -1) when off the image."""
    sig_stroke_finished = Signal()
    """A brush or eraser stroke ended."""
    sig_split_moved = Signal(float)
    sig_region_drawn = Signal(object)
    """A region was dragged with the region tool: (QRect in image pixels, or None when the
    drag was too small)."""
    """The before/after split moved: (fraction of the image width)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("canvasView")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QBrush(QColor(CANVAS_BACKGROUND)))
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.viewport().grabGesture(Qt.GestureType.PinchGesture)
        self.image_item = ImageItem()
        self.mask_item = LayerItem(0.5)
        self.hint_item = LayerItem(0.9)
        self.region_item = RegionItem()
        items = (self.image_item, self.mask_item, self.hint_item, self.region_item)
        for z, item in enumerate(items):
            item.setZValue(z)
            self.scene().addItem(item)
        self.tool = Tool.PAN
        self.brush_size = 40.0
        self.brush_hardness = 0.7
        self.hint_size = 10.0
        self.hint_colour = QColor(220, 120, 60)
        self.show_mask = True
        self._fit = True
        self._space_held = False
        self._pan_from: QPointF | None = None
        self._dragging_split = False
        self._painting: PaintLayer | None = None
        self._cursor_scene: QPointF | None = None
        self.horizontalScrollBar().valueChanged.connect(self.sig_view_changed)
        self.verticalScrollBar().valueChanged.connect(self.sig_view_changed)
        self._apply_tool_cursor()

    # -- content ------------------------------------------------------------------------------

    def set_images(
        self, before: QImage | None, after: QImage | None, display_size: QSize | None = None
    ) -> None:
        """Show `after` (the current state) with `before` for the split and toggle; both are
        drawn at `display_size` when given (else at the size of `after`)."""
        item = self.image_item
        old_size = item.boundingRect().size()
        item.prepareGeometryChange()
        item.before, item.after = before, after
        item.display_size = display_size
        item.preview = None
        bounds = item.boundingRect()
        self.scene().setSceneRect(bounds)
        item.update()
        if bounds.size() != old_size or self._fit:
            self.zoom_fit()

    def set_preview(self, patch: QImage | None, rect: QRect | None = None) -> None:
        """Overlay a live-preview result on the 'after' side at `rect` (image pixels)."""
        self.image_item.preview = patch
        self.image_item.preview_rect = rect if rect is not None else QRect()
        self.image_item.update()

    def set_layers(self, mask: PaintLayer | None, hints: PaintLayer | None) -> None:
        self.mask_item.set_layer(mask)
        self.hint_item.set_layer(hints)

    def set_mask_colour(self, colour: QColor) -> None:
        self.mask_item.tint = QColor(colour)
        self.mask_item.update()

    def set_mask_visible(self, visible: bool) -> None:
        self.show_mask = visible
        self.mask_item.setVisible(visible)

    def set_compare(self, mode: Compare) -> None:
        self.image_item.compare = mode
        self.image_item.update()
        self.viewport().update()

    @property
    def compare(self) -> Compare:
        return self.image_item.compare

    def set_split(self, fraction: float) -> None:
        self.image_item.split = min(max(fraction, 0.0), 1.0)
        self.image_item.update()
        self.viewport().update()
        self.sig_split_moved.emit(self.image_item.split)

    def has_image(self) -> bool:
        return not self.image_item.boundingRect().isEmpty()

    # -- tools --------------------------------------------------------------------------------

    def set_tool(self, tool: Tool) -> None:
        self.tool = tool
        self._apply_tool_cursor()
        self.viewport().update()

    def _apply_tool_cursor(self) -> None:
        panning = self.tool is Tool.PAN or self._space_held
        self.setDragMode(
            QGraphicsView.DragMode.ScrollHandDrag if panning else QGraphicsView.DragMode.NoDrag
        )
        shape = Qt.CursorShape.OpenHandCursor if panning else Qt.CursorShape.CrossCursor
        self.viewport().setCursor(QCursor(shape))

    def _active_layer(self) -> PaintLayer | None:
        if self.tool in (Tool.BRUSH, Tool.ERASER):
            return self.mask_item.layer
        if self.tool is Tool.HINT:
            return self.hint_item.layer
        return None

    # -- zoom ---------------------------------------------------------------------------------

    def zoom(self) -> float:
        return self.transform().m11()

    def fit_zoom(self) -> float:
        bounds = self.image_item.boundingRect()
        if bounds.isEmpty():
            return 1.0
        area = self.viewport().rect().adjusted(12, 12, -12, -12)
        return max(min(area.width() / bounds.width(), area.height() / bounds.height()), MIN_ZOOM)

    def zoom_fit(self) -> None:
        self._set_zoom(self.fit_zoom())
        self.centerOn(self.image_item.boundingRect().center())
        self._fit = True

    def zoom_actual(self) -> None:
        """100 %: one image pixel per screen pixel, around the view's centre."""
        self.set_zoom(1.0)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under `anchor` (viewport pixels; default the centre)."""
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        scene_point = self.mapToScene(anchor.toPoint())
        self._set_zoom(zoom)
        moved = self.mapFromScene(scene_point) - anchor.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        self._fit = False

    def _set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, min(MIN_ZOOM, self.fit_zoom())), MAX_ZOOM)
        if abs(zoom - 1.0) < 1e-3:
            zoom = 1.0
        self.setTransform(QTransform.fromScale(zoom, zoom))
        self.sig_zoom_changed.emit(zoom)
        self.sig_view_changed.emit()

    @property
    def fitted(self) -> bool:
        """The whole image is in view, and stays so as the view is resized."""
        return self._fit

    def view_state(self) -> tuple[float, QPointF]:
        """(zoom, image point at the view's centre): enough to put another view in sync."""
        return self.zoom(), self.mapToScene(self.viewport().rect().center())

    def apply_view_state(self, state: tuple[float, QPointF]) -> None:
        zoom, centre = state
        blocked = self.blockSignals(True)
        self._set_zoom(zoom)
        self.centerOn(centre)
        self._fit = False
        self.blockSignals(blocked)
        self.viewport().update()

    def visible_image_rect(self) -> QRect:
        """The part of the image on screen, in image pixels."""
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        bounds = self.image_item.boundingRect()
        return visible.intersected(bounds).toAlignedRect().intersected(bounds.toRect())

    # -- events -------------------------------------------------------------------------------

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        if self._fit:
            self.zoom_fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        modifiers = event.modifiers()
        trackpad_scroll = not event.pixelDelta().isNull()
        if trackpad_scroll and not modifiers & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(event)  # two-finger scroll pans
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom() * ZOOM_STEP ** (steps / 2), event.position())
        event.accept()

    def viewportEvent(self, event: QEvent) -> bool:
        pinch = Qt.NativeGestureType.ZoomNativeGesture
        if isinstance(event, QNativeGestureEvent) and event.gestureType() == pinch:
            anchor = self.viewport().mapFromGlobal(event.globalPosition().toPoint())
            self.set_zoom(self.zoom() * (1.0 + event.value()), QPointF(anchor))
            return True
        return super().viewportEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self._apply_tool_cursor()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self._apply_tool_cursor()
            return
        super().keyReleaseEvent(event)

    def _near_split_handle(self, pos: QPointF) -> bool:
        if self.image_item.compare is not Compare.SPLIT or not self.has_image():
            return False
        handle_x = self.mapFromScene(QPointF(self.image_item.split_x, 0)).x()
        return abs(pos.x() - handle_x) <= _HANDLE_GRAB_PX

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = pos
            self.viewport().setCursor(QCursor(Qt.CursorShape.ClosedHandCursor))
            return
        if event.button() == Qt.MouseButton.LeftButton and not self._space_held:
            if self._near_split_handle(pos):
                self._dragging_split = True
                return
            if self.tool is Tool.REGION and self.has_image():
                scene = self.mapToScene(pos.toPoint())
                self.region_item.begin(scene, self.image_item.boundingRect())
                return
            layer = self._active_layer()
            if layer is not None and self.has_image():
                self._painting = layer
                hint = self.tool is Tool.HINT
                layer.begin_stroke(
                    self.mapToScene(pos.toPoint()),
                    self.hint_size if hint else self.brush_size,
                    1.0 if hint else self.brush_hardness,
                    erase=self.tool is Tool.ERASER,
                    colour=self.hint_colour if hint else None,
                )
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        scene = self.mapToScene(pos.toPoint())
        self._cursor_scene = scene
        self._emit_cursor(scene)
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        if self._dragging_split:
            width = self.image_item.boundingRect().width()
            self.set_split(scene.x() / width if width else 0.5)
            return
        if self._painting is not None:
            self._painting.stroke_to(scene)
        if self.region_item.drawing:
            self.region_item.drag_to(scene)
        if self._near_split_handle(pos):
            self.viewport().setCursor(QCursor(Qt.CursorShape.SplitHCursor))
        elif self._painting is None:
            self._apply_tool_cursor()
        if self._active_layer() is not None:
            self.viewport().update()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton and self._pan_from is not None:
            self._pan_from = None
            self._apply_tool_cursor()
            return
        if self._dragging_split:
            self._dragging_split = False
            return
        if self.region_item.drawing and event.button() == Qt.MouseButton.LeftButton:
            self.sig_region_drawn.emit(self.region_item.end())
            return
        if self._painting is not None and event.button() == Qt.MouseButton.LeftButton:
            self._painting.end_stroke()
            self._painting = None
            self.sig_stroke_finished.emit()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._cursor_scene = None
        self.sig_cursor_moved.emit(-1, -1)
        self.viewport().update()
        super().leaveEvent(event)

    def _emit_cursor(self, scene: QPointF) -> None:
        if self.image_item.boundingRect().contains(scene):
            self.sig_cursor_moved.emit(int(scene.x()), int(scene.y()))
        else:
            self.sig_cursor_moved.emit(-1, -1)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:  # type: ignore[override]
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.sig_files_dropped.emit(paths)
        else:
            super().dropEvent(event)

    # -- overlays -----------------------------------------------------------------------------

    def drawBackground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        super().drawBackground(painter, rect)
        bounds = self.image_item.boundingRect()
        if bounds.isEmpty():
            return
        painter.save()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 90))
        shadow = 6.0 / max(self.zoom(), 1e-3)
        painter.drawRect(bounds.adjusted(-shadow * 0.5, 0, shadow, shadow))
        painter.restore()

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        if not self.has_image():
            return
        painter.save()
        painter.resetTransform()
        if self.image_item.compare is Compare.SPLIT:
            self._draw_split_handle(painter)
        elif self.image_item.compare is Compare.BEFORE:
            self._draw_tag(painter, "Before", QPointF(12, 12))
        if self._active_layer() is not None and self._cursor_scene is not None:
            self._draw_brush_outline(painter)
        painter.restore()

    def _draw_split_handle(self, painter: QPainter) -> None:
        bounds = self.mapFromScene(self.image_item.boundingRect()).boundingRect()
        x = self.mapFromScene(QPointF(self.image_item.split_x, 0)).x()
        top = max(bounds.top(), 0)
        bottom = min(bounds.bottom(), self.viewport().height())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(0, 0, 0, 120), 3))
        painter.drawLine(x, top, x, bottom)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 1))
        painter.drawLine(x, top, x, bottom)
        centre = QPointF(x, (top + bottom) / 2)
        painter.setBrush(QColor(ACCENT))
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawEllipse(centre, 11, 11)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        for direction in (-1, 1):
            tip = centre + QPointF(6 * direction, 0)
            painter.drawLine(tip, tip + QPointF(-4 * direction, -4))
            painter.drawLine(tip, tip + QPointF(-4 * direction, 4))
        self._draw_tag(painter, "Before", QPointF(x - 70, top + 10), right_aligned_at=x - 10)
        self._draw_tag(painter, "After", QPointF(x + 10, top + 10))

    def _draw_tag(
        self, painter: QPainter, text: str, at: QPointF, right_aligned_at: float | None = None
    ) -> None:
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(text) + 14
        height = metrics.height() + 6
        x = right_aligned_at - width if right_aligned_at is not None else at.x()
        box = QRectF(x, at.y(), width, height)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_brush_outline(self, painter: QPainter) -> None:
        assert self._cursor_scene is not None
        centre = QPointF(self.mapFromScene(self._cursor_scene))
        size = self.hint_size if self.tool is Tool.HINT else self.brush_size
        radius = max(size * self.zoom() / 2.0, 2.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 160), 3))
        painter.drawEllipse(centre, radius, radius)
        painter.setPen(QPen(QColor(255, 255, 255, 220), 1))
        painter.drawEllipse(centre, radius, radius)
        if self.tool is Tool.HINT:
            painter.setBrush(self.hint_colour)
            painter.drawEllipse(centre, 3, 3)
