"""The window's docks: where each panel starts, and the layout saved between sessions."""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtCore import QByteArray, QEvent, QSettings, QSize, Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QWidget

LAYOUT_VERSION = 2
BATCH_MIN_HEIGHT = 360
PROGRESS_HEIGHT = 200
SIDE_WIDTH = 440
CANVAS_SHARE = 0.5
MODELS_SHARE = 0.55
"""Of the side column, for the Models panel (task buttons, engines, model buttons) over the
Inspector."""
_FEATURES = (
    QDockWidget.DockWidgetFeature.DockWidgetClosable
    | QDockWidget.DockWidgetFeature.DockWidgetMovable
    | QDockWidget.DockWidgetFeature.DockWidgetFloatable
)


class Docks:
    """The docks of `window` by name, their default layout, and saving and restoring it."""

    def __init__(self, window: QMainWindow, panels: dict[str, tuple[str, QWidget]]) -> None:
        self.window = window
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        window.setCorner(Qt.Corner.BottomRightCorner, right)
        window.setCorner(Qt.Corner.TopRightCorner, right)
        areas = {"canvas": left, "models": right, "inspector": right, "history": right}
        self.docks = {
            name: self._dock(title, name, widget, areas.get(name, bottom))
            for name, (title, widget) in panels.items()
        }
        window.splitDockWidget(self["models"], self["inspector"], Qt.Orientation.Vertical)
        window.tabifyDockWidget(self["models"], self["history"])
        window.tabifyDockWidget(self["progress"], self["batch"])
        self.raise_defaults()
        self.default_state: QByteArray | None = None

    def __getitem__(self, name: str) -> QDockWidget:
        return self.docks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.docks)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(f"dock{name.capitalize()}")
        dock.setWidget(widget)
        dock.setFeatures(_FEATURES)
        self.window.addDockWidget(area, dock)
        return dock

    def raise_defaults(self) -> None:
        self["models"].raise_()
        self["progress"].raise_()

    def apply_default_sizes(self) -> None:
        """Most of the window for the photo; the panels get what they need."""
        width, height = self.window.width(), self.window.height()
        side = min(SIDE_WIDTH, width // 3)
        vertical, horizontal = Qt.Orientation.Vertical, Qt.Orientation.Horizontal
        self.window.resizeDocks(
            [self["canvas"], self["inspector"]], [width - side, side], horizontal
        )
        models = int(height * MODELS_SHARE)
        self.window.resizeDocks(
            [self["models"], self["inspector"]], [models, height - models], vertical
        )
        self.window.resizeDocks(
            [self["canvas"], self["progress"]],
            [height - PROGRESS_HEIGHT - 60, PROGRESS_HEIGHT],
            vertical,
        )

    def remember_default(self) -> None:
        self.apply_default_sizes()
        self.default_state = self.window.saveState(LAYOUT_VERSION)

    def restore(self, settings: QSettings) -> None:
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.window.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.window.restoreState(state, LAYOUT_VERSION)

    def keep_room_for_the_photo(self) -> None:
        """Give the bottom panels back their default height when a saved layout left the
        photo (or the welcome page) less than half the window."""
        canvas = self["canvas"]
        if canvas.isFloating() or canvas.height() >= self.window.height() * CANVAS_SHARE:
            return
        bottom = [self[name] for name in ("progress", "batch") if not self[name].isFloating()]
        self.window.resizeDocks(
            [canvas, *bottom[:1]],
            [self.window.height() - PROGRESS_HEIGHT - 60, PROGRESS_HEIGHT],
            Qt.Orientation.Vertical,
        )

    def save(self, settings: QSettings) -> None:
        settings.setValue("window/geometry", self.window.saveGeometry())
        settings.setValue("window/state", self.window.saveState(LAYOUT_VERSION))
        settings.sync()

    def reset(self) -> None:
        """Every panel back where it was when Studio first opened."""
        for dock in self.docks.values():
            dock.setFloating(False)
        if self.default_state is not None:
            self.window.restoreState(self.default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()
        self.raise_defaults()

    def show_batch(self) -> None:
        """Bring the Batch panel forward with room for its list."""
        dock = self["batch"]
        dock.show()
        dock.raise_()
        if not dock.isFloating() and dock.height() < BATCH_MIN_HEIGHT:
            self.window.resizeDocks([dock], [BATCH_MIN_HEIGHT], Qt.Orientation.Vertical)

    def show_progress(self) -> None:
        self["progress"].show()
        self["progress"].raise_()


def scrolling(panel: QWidget, sideways: bool = True) -> QScrollArea:
    """`panel` in a scroll area, so its dock can be made shorter than the panel's minimum (and
    narrower too, unless not `sideways`: then the dock stays as wide as the panel needs)."""
    scroll = QScrollArea() if sideways else _UpAndDown()
    scroll.setObjectName("panelScroll")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(panel)
    return scroll


class _UpAndDown(QScrollArea):
    """A scroll area that scrolls only up and down: it is at least as wide as its panel needs."""

    def __init__(self) -> None:
        super().__init__()
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QSize:
        panel = self.widget()
        least = super().minimumSizeHint()
        if panel is None:
            return least
        width = panel.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        return QSize(max(least.width(), width), least.height())

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the panel's needs may have changed
        return super().event(event)
