"""Starting the window: `studio`, `studio gui FILES` and the `studio-gui` entry point."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from studio.ui.main_window import MainWindow
from studio.ui.theme import apply_dark_theme

APP_NAME = "Studio"
GIL_SWITCH_INTERVAL_S = 0.001


def create_application(argv: Sequence[str] = ()) -> QApplication:
    """The QApplication (reused when one exists), named and themed."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        QApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication([sys.argv[0] if sys.argv else "studio", *argv])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("studio")
    apply_dark_theme(app)
    # The GUI thread waits at most this long for the GIL while a job computes in Python.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return app


def run(files: list[str]) -> int:
    """Open the window with `files` and run the event loop until it closes."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_application()
    window = MainWindow()
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if os.environ.get("STUDIO_REPORT_LAUNCH"):
        window.sig_first_exposed.connect(
            lambda: QTimer.singleShot(0, lambda: _report_launch(window))
        )
    window.show()
    if files:
        window.open_paths([Path(f) for f in files])
    return int(app.exec())


def _report_launch(window: MainWindow) -> None:
    """Print a marker once the window is on screen (benchmarks time it from outside)."""
    print(f"STUDIO_WINDOW_SHOWN torch={int('torch' in sys.modules)}", flush=True)
    if os.environ.get("STUDIO_REPORT_LAUNCH") == "quit":
        window.close()


def main() -> int:
    """The `studio-gui` entry point."""
    return run(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
