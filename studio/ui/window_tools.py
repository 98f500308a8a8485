"""The window's editing tools: the tool in hand, the mask and colour hints, the region drawn,
undo and redo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QRect

from studio.core.imageio import read_mask
from studio.core.protocol import EngineSpec, InputForm
from studio.ui.actions import TOOL_ACTIONS
from studio.ui.canvas import Tool
from studio.ui.dialogs import ask_open_file

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


def takes_a_region(spec: EngineSpec | None) -> bool:
    """Whether the engine takes a region drawn with the region tool."""
    return spec is not None and spec.input_of_form(InputForm.REGION) is not None


class WindowTools:
    """The canvas tools, the photo's mask and hints layers and region, and its undo history."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def set_tool(self, tool: Tool) -> None:
        w = self.window
        w.canvas_panel.set_tool(tool)
        for kind, name in TOOL_ACTIONS.items():
            w.act[name].setChecked(tool is kind)
        if tool in (Tool.BRUSH, Tool.ERASER) and not w.act["mask_show"].isChecked():
            w.act["mask_show"].setChecked(True)

    def scale_brush(self, factor: float) -> None:
        canvas_panel = self.window.canvas_panel
        canvas_panel.set_brush_size(max(self.window.canvas.brush_size * factor, 1.0))

    # -- mask and hints -----------------------------------------------------------------------

    def mask_clear(self) -> None:
        document = self.window.document
        if document is not None:
            document.mask.clear()
            self.layers_edited()

    def mask_invert(self) -> None:
        document = self.window.document
        if document is not None:
            document.mask.invert()
            self.layers_edited()

    def hints_clear(self) -> None:
        document = self.window.document
        if document is not None:
            document.hints.clear()
            self.layers_edited()

    def choose_mask(self) -> None:
        if self.window.document is not None:
            path = ask_open_file(self.window, "Load a mask")
            if path:
                self.load_mask(path)

    def load_mask(self, path: Path) -> None:
        w = self.window
        document = w.document
        if document is None:
            return
        size = (document.mask.height, document.mask.width)

        def done(mask: np.ndarray) -> None:
            document.mask.set_alpha(mask, f"Load {path.name}")
            self.layers_edited()

        w.background.call(
            read_mask, path, size, on_done=done, on_error=lambda e: w.notify(str(e), error=True)
        )

    def save_mask(self) -> None:
        if self.window.document is not None:
            self.window.exporter.save_mask(self.window.document)

    def layers_edited(self) -> None:
        """A stroke, hint or job changed the photo's layers: actions and preview follow."""
        self.window.update_actions()
        self.window.jobs.schedule_preview()

    # -- region -------------------------------------------------------------------------------

    def on_region_drawn(self, region: QRect | None) -> None:
        """A drag with the region tool ended; a click or a tiny drag keeps the region as it was."""
        document = self.window.document
        if document is not None and region is not None:
            document.set_region(region)
        else:
            self.show_region()

    def show_region(self) -> None:
        """The photo's region on the canvas, while the chosen engine takes one."""
        w = self.window
        takes_region = takes_a_region(w.models_panel.current_engine())
        region = w.document.region if w.document is not None and takes_region else None
        w.canvas.region_item.show_region(region)

    # -- undo ---------------------------------------------------------------------------------

    def undo(self) -> None:
        """Undo the last job, stroke or hint of the photo, and say what was undone."""
        document = self.window.document
        stack = document.undo_stack if document is not None else None
        if stack is not None and stack.canUndo():
            text = stack.undoText()
            stack.undo()
            self.window.notify(f"Undid {text}")

    def redo(self) -> None:
        document = self.window.document
        stack = document.undo_stack if document is not None else None
        if stack is not None and stack.canRedo():
            text = stack.redoText()
            stack.redo()
            self.window.notify(f"Redid {text}")
