"""The Canvas panel: tool options, one tab per open photo, and the view (or the welcome page)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QLabel,
    QStackedWidget,
    QTabBar,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledSlider

from studio.ui.canvas import CanvasView, Tool
from studio.ui.compare import ComparePane
from studio.ui.welcome import WelcomePage


def swatch(colour: QColor, size: int = 16) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(colour)
    return QIcon(pixmap)


class CanvasPanel(QWidget):
    """Everything in the Canvas dock."""

    sig_hint_colour_changed = Signal(QColor)
    """The colour-hint tool's colour changed."""
    sig_mask_colour_chosen = Signal(QColor)
    """The user chose the colour the mask is shown in."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = CanvasView()
        self.compare = ComparePane()
        self.welcome = WelcomePage()
        self.tabs = QTabBar()
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(False)
        self.tabs.setDocumentMode(True)
        self.tabs.setExpanding(False)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.compare)

        self.tool_bar = QToolBar("Tool options")
        self.tool_bar.setIconSize(QSize(18, 18))
        self.size_slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 500)
        self.size_slider.setValue(int(self.view.brush_size))
        self.size_slider.setFixedWidth(150)
        self.size_slider.setToolTip("Brush size in image pixels ([ and ])")
        self.size_slider.valueChanged.connect(self._on_size)
        self.hardness_slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.hardness_slider.setRange(0, 100)
        self.hardness_slider.setValue(int(self.view.brush_hardness * 100))
        self.hardness_slider.setFixedWidth(130)
        self.hardness_slider.setToolTip("Brush hardness: 0 = soft edge, 100 = hard edge")
        self.hardness_slider.valueChanged.connect(self._on_hardness)
        self.colour_button = QToolButton()
        self.colour_button.setToolTip("Colour of the hints you paint (colorize)")
        self.colour_button.setIcon(swatch(self.view.hint_colour))
        self.colour_button.clicked.connect(self._choose_colour)
        self.mask_colour_button = QToolButton()
        self.mask_colour_button.setToolTip(
            "Colour the mask is shown in (it changes nothing in the mask); "
            "by default one that stands out on the photo"
        )
        self.mask_colour_button.clicked.connect(self._choose_mask_colour)
        self.size_label = QLabel(" Size ")
        self.hardness_label = QLabel(" Hardness ")
        self.colour_label = QLabel(" Hint colour ")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.tool_bar)
        layout.addWidget(self.tabs)
        layout.addWidget(self.stack, 1)
        self.show_welcome()

    def add_tool_widgets(self) -> None:
        """Brush size, hardness and hint colour, after the tool actions the window added."""
        self.tool_bar.addSeparator()
        self.tool_bar.addWidget(self.size_label)
        self.tool_bar.addWidget(self.size_slider)
        self.tool_bar.addWidget(self.hardness_label)
        self.tool_bar.addWidget(self.hardness_slider)
        self.colour_actions = [
            self.tool_bar.addWidget(self.colour_label),
            self.tool_bar.addWidget(self.colour_button),
        ]
        self.tool_bar.addSeparator()

    def add_mask_colour(self) -> None:
        """The mask colour button, after the mask actions the window added."""
        self.tool_bar.addWidget(self.mask_colour_button)

    def show_mask_colour(self, colour: QColor) -> None:
        self.view.set_mask_colour(colour)
        self.mask_colour_button.setIcon(swatch(colour))

    def _choose_mask_colour(self) -> None:
        colour = QColorDialog.getColor(self.view.mask_item.tint or QColor(), self, "Mask colour")
        if colour.isValid():
            self.show_mask_colour(colour)
            self.sig_mask_colour_chosen.emit(colour)

    def set_tool(self, tool: Tool) -> None:
        self.view.set_tool(tool)
        for action in getattr(self, "colour_actions", []):
            action.setVisible(tool is Tool.HINT)

    def show_welcome(self) -> None:
        self.stack.setCurrentWidget(self.welcome)
        self.tool_bar.hide()
        self.tabs.setVisible(self.tabs.count() > 0)

    def show_view(self) -> None:
        self.stack.setCurrentWidget(self.view)
        self.tool_bar.show()
        self.tool_bar.setEnabled(True)
        self.tabs.show()

    def show_compare(self) -> None:
        self.stack.setCurrentWidget(self.compare)
        self.tool_bar.setEnabled(False)

    def set_brush_size(self, size: float) -> None:
        self.size_slider.setValue(int(min(max(size, 1), 500)))

    def _on_size(self, value: int) -> None:
        self.view.brush_size = float(value)
        self.view.viewport().update()

    def _on_hardness(self, value: int) -> None:
        self.view.brush_hardness = value / 100.0

    def _choose_colour(self) -> None:
        colour = QColorDialog.getColor(self.view.hint_colour, self, "Hint colour")
        if colour.isValid():
            self.set_hint_colour(colour)

    def set_hint_colour(self, colour: QColor) -> None:
        self.view.hint_colour = colour
        self.colour_button.setIcon(swatch(colour))
        self.sig_hint_colour_changed.emit(colour)
