"""The dark theme: a neutral-grey Fusion palette plus `resources/theme/dark.qss`."""

from __future__ import annotations

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from studio.ui.resources import resource_path

ACCENT = "#2f7fd8"
TEXT = "#d6d6d6"
DIM_TEXT = "#8c8c8c"
DISABLED_TEXT = "#6a6a6a"
CANVAS_BACKGROUND = "#262626"
ERROR = "#e5534b"
WARNING = "#d9a441"
SUCCESS = "#58a55c"
MASK_COLOUR = QColor(255, 48, 64)

_ROLES = {
    QPalette.ColorRole.Window: "#2a2a2a",
    QPalette.ColorRole.WindowText: TEXT,
    QPalette.ColorRole.Base: "#1c1c1c",
    QPalette.ColorRole.AlternateBase: "#242424",
    QPalette.ColorRole.ToolTipBase: "#3a3a3a",
    QPalette.ColorRole.ToolTipText: "#ececec",
    QPalette.ColorRole.PlaceholderText: "#777777",
    QPalette.ColorRole.Text: TEXT,
    QPalette.ColorRole.Button: "#353535",
    QPalette.ColorRole.ButtonText: TEXT,
    QPalette.ColorRole.BrightText: "#ffffff",
    QPalette.ColorRole.Link: "#5aa2f0",
    QPalette.ColorRole.Highlight: ACCENT,
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Light: "#404040",
    QPalette.ColorRole.Midlight: "#363636",
    QPalette.ColorRole.Mid: "#2c2c2c",
    QPalette.ColorRole.Dark: "#1a1a1a",
    QPalette.ColorRole.Shadow: "#0e0e0e",
}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in _ROLES.items():
        palette.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(DISABLED_TEXT))
    return palette


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style, the dark palette, the style sheet and the app icon."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    qss = resource_path("theme", "dark.qss")
    if qss.is_file():
        folder = qss.parent.as_posix()
        app.setStyleSheet(qss.read_text(encoding="utf-8").replace("@THEME@", folder))
    icon = resource_path("studio.svg")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
