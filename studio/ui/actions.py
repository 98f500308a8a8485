"""The window's actions as a table (text, shortcut, icon, handler), and where they appear."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

from studio.ui.canvas import Tool
from studio.ui.icons import REGION_ICON, icon

Key = QKeySequence.StandardKey
Handler = Callable[[Any], Callable[..., Any]]
"""Given the window, the callable an action triggers."""


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    handler: Handler
    shortcut: QKeySequence.StandardKey | str | None = None
    icon: str = ""
    tip: str = ""
    checkable: bool = False
    on_toggle: bool = True
    """For checkable actions: call the handler with the new state (else on trigger only)."""
    needs_document: bool = True
    """Disabled while no photo is open."""


def _tool(tool: Tool) -> Handler:
    return lambda w: partial(w.tools.set_tool, tool)


A = ActionSpec
ACTIONS: tuple[ActionSpec, ...] = (
    A("open", "&Open…", lambda w: w.photos.choose_files, Key.Open, "folder-open", "Open images",
      needs_document=False),
    A("export", "&Export…", lambda w: w.photos.export_current, "Ctrl+E", "export",
      "Export the step you are viewing"),
    A("close", "&Close image", lambda w: w.photos.close_document, Key.Close, "close"),
    A("quit", "&Quit", lambda w: w.close, Key.Quit, "power", needs_document=False),
    A("undo", "&Undo", lambda w: w.tools.undo, Key.Undo, "undo",
      "Undo the last stroke, hint or job"),
    A("redo", "&Redo", lambda w: w.tools.redo, Key.Redo, "redo"),
    A("zoom_fit", "Zoom to &fit", lambda w: w.canvas.zoom_fit, "Ctrl+0",
      "fit-to-screen-outline"),
    A("zoom_100", "&100 %", lambda w: w.canvas.zoom_actual, "Ctrl+1", "numeric-1-box-outline",
      "Actual pixels"),
    A("zoom_in", "Zoom &in", lambda w: w.canvas.zoom_in, Key.ZoomIn, "magnify-plus-outline"),
    A("zoom_out", "Zoom &out", lambda w: w.canvas.zoom_out, Key.ZoomOut,
      "magnify-minus-outline"),
    A("before", "Show &before", lambda w: w.views.set_before, "\\", "image-filter-black-white",
      "Show the image before the last operation", checkable=True),
    A("split", "&Split before/after", lambda w: w.views.set_split, "Y", "compare",
      "Before on the left, after on the right; drag the handle", checkable=True),
    A("compare", "&A/B compare", lambda w: w.views.set_compare_ab, "Ctrl+Shift+C",
      "view-split-vertical", "Two steps side by side, zoomed together", checkable=True),
    A("run", "&Run", lambda w: w.run_current, "Ctrl+Return", "play",
      "Apply the chosen engine to the whole image"),
    A("cancel", "&Cancel", lambda w: w.cancel_current, "Esc", "stop", "Cancel the running job",
      needs_document=False),
    A("preview", "&Live preview", lambda w: w.jobs.set_preview_enabled, "P", "eye-outline",
      "Preview the visible area as you change settings", checkable=True,
      needs_document=False),
    A("pan", "&Hand", _tool(Tool.PAN), "H", "hand-back-right-outline", "Pan (or hold Space)",
      checkable=True, on_toggle=False, needs_document=False),
    A("brush", "&Mask brush", _tool(Tool.BRUSH), "B", "brush", "Paint the mask",
      checkable=True, on_toggle=False, needs_document=False),
    A("eraser", "&Eraser", _tool(Tool.ERASER), "E", "eraser", "Erase the mask",
      checkable=True, on_toggle=False, needs_document=False),
    A("hint", "Colour &hint", _tool(Tool.HINT), "I", "eyedropper-variant",
      "Paint colour hints for colorize", checkable=True, on_toggle=False,
      needs_document=False),
    A("region", "&Region", _tool(Tool.REGION), "R", REGION_ICON,
      "Drag a rectangle: the part of the photo the engine estimates from", checkable=True,
      on_toggle=False, needs_document=False),
    A("bigger", "Bigger brush", lambda w: partial(w.tools.scale_brush, 1.25), "]",
      needs_document=False),
    A("smaller", "Smaller brush", lambda w: partial(w.tools.scale_brush, 0.8), "[",
      needs_document=False),
    A("mask_clear", "&Clear mask", lambda w: w.tools.mask_clear, None, "selection-remove",
      "Clear the mask"),
    A("mask_invert", "&Invert mask", lambda w: w.tools.mask_invert, None, "invert-colors",
      "Invert the mask"),
    A("mask_load", "&Load mask…", lambda w: w.tools.choose_mask, None, "file-upload-outline",
      "Load a mask image (white = painted)"),
    A("mask_save", "&Save mask…", lambda w: w.tools.save_mask, None, "content-save-outline",
      "Save the mask as a PNG"),
    A("mask_show", "Show &mask", lambda w: w.canvas.set_mask_visible, "M", "eye",
      "Show or hide the mask", checkable=True, needs_document=False),
    A("hints_clear", "Clear colour hints", lambda w: w.tools.hints_clear, None, "palette-outline"),
    A("import_model", "&Import model…", lambda w: w.engines.choose_model_file, None,
      "file-import-outline", needs_document=False),
    A("manage_models", "&Manage models…", lambda w: w.engines.manage_models, None, "cog-outline",
      needs_document=False),
    A("reset_layout", "&Reset layout", lambda w: w.reset_layout, None, "view-dashboard-outline",
      "Put every panel back where it started", needs_document=False),
    A("full_screen", "&Full screen", lambda w: w.set_full_screen, Key.FullScreen, "fullscreen",
      checkable=True, needs_document=False),
    A("welcome", "&Welcome", lambda w: w.photos.show_welcome, None, "home-outline",
      "What Studio does, models and samples", needs_document=False),
    A("about", "&About Studio", lambda w: w.about, None, "information-outline",
      needs_document=False),
)  # fmt: skip

MENUS: dict[str, tuple[str, ...]] = {
    "&File": ("open", "@recent", "export", "-", "close", "quit"),
    "&Edit": ("undo", "redo"),
    "&View": (
        "zoom_fit", "zoom_100", "zoom_in", "zoom_out", "-",
        "before", "split", "compare", "mask_show", "-",
        "@panels", "reset_layout", "full_screen",
    ),
    "&Job": ("run", "cancel", "preview"),
    "&Tools": (
        "pan", "brush", "eraser", "hint", "region", "-", "bigger", "smaller", "-",
        "mask_clear", "mask_invert", "mask_load", "mask_save", "hints_clear",
    ),
    "&Models": ("import_model", "manage_models"),
    "&Help": ("welcome", "about"),
}  # fmt: skip
"""Menus by title; '-' is a separator, '@name' a part the window fills in itself."""

MAIN_TOOLBAR = (
    "open", "export", "-", "undo", "redo", "-",
    "zoom_fit", "zoom_100", "zoom_in", "zoom_out", "-",
    "before", "split", "compare", "-", "preview", "run", "cancel",
)  # fmt: skip
TOOL_OPTIONS = ("pan", "brush", "eraser", "hint", "region")
MASK_OPTIONS = ("mask_clear", "mask_invert", "mask_load", "mask_save", "mask_show")
TOOL_ACTIONS = {
    Tool.PAN: "pan",
    Tool.BRUSH: "brush",
    Tool.ERASER: "eraser",
    Tool.HINT: "hint",
    Tool.REGION: "region",
}


class Actions:
    """The window's QActions by name, made from `ACTIONS`."""

    def __init__(self, window: QMainWindow, specs: Iterable[ActionSpec] = ACTIONS) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self._actions = {name: _make(window, spec) for name, spec in self.specs.items()}

    def __getitem__(self, name: str) -> QAction:
        return self._actions[name]

    def __iter__(self) -> Any:
        return iter(self._actions.values())

    def set_document_open(self, has_document: bool) -> None:
        """Enable the actions that act on a photo only while one is open."""
        for name, spec in self.specs.items():
            if spec.needs_document:
                self._actions[name].setEnabled(has_document)

    def add_to(self, target: QMenu | QToolBar, names: Iterable[str]) -> None:
        """Add the named actions in order ('-' is a separator; '@' parts are skipped)."""
        for name in names:
            if name == "-":
                target.addSeparator()
            elif not name.startswith("@"):
                target.addAction(self._actions[name])


def _make(window: QMainWindow, spec: ActionSpec) -> QAction:
    action = QAction(spec.text, window)
    if spec.icon:
        action.setIcon(icon(spec.icon))
    tip = spec.tip or spec.text.replace("…", "").replace("&", "")
    if spec.shortcut is not None:
        sequence = QKeySequence(spec.shortcut)
        action.setShortcut(sequence)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        tip += f" ({sequence.toString(QKeySequence.SequenceFormat.NativeText)})"
    action.setCheckable(spec.checkable)
    action.setToolTip(tip)
    action.setStatusTip(tip)
    signal = action.toggled if spec.checkable and spec.on_toggle else action.triggered
    handler = spec.handler(window)
    if spec.checkable and spec.on_toggle:
        signal.connect(handler)
    else:
        signal.connect(lambda _checked=False: handler())
    window.addAction(action)
    return action
