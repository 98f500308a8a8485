"""Themed icons from qtawesome (Material Design Icons), cached by name."""

from __future__ import annotations

from functools import cache

import qtawesome
from PySide6.QtGui import QIcon

from studio.ui.theme import ACCENT, DISABLED_TEXT, TEXT

TASK_ICONS = {
    "denoise": "grain",
    "deblur": "image-filter-center-focus-weak",
    "inpaint": "auto-fix",
    "hdr": "image-filter-hdr",
    "colorize": "palette",
    "style": "brush-variant",
    "upscale": "arrow-expand-all",
    "degrade": "image-broken-variant",
}

REGION_ICON = "selection-drag"
"""The region tool's icon: a dashed rectangle being drawn."""
CLEAR_REGION_ICON = "selection-off"
STROKE_ICON = "brush"

TASK_TITLES = {
    "denoise": "Denoise",
    "deblur": "Deblur",
    "inpaint": "Inpaint",
    "hdr": "HDR",
    "colorize": "Colorize",
    "style": "Style",
    "upscale": "Upscale",
    "degrade": "Degrade",
}


@cache
def icon(name: str, colour: str = TEXT) -> QIcon:
    """The MDI icon `name` (e.g. 'folder-open'), dimmed when disabled, accented when on,
    plain on a selected (blue) row, where the accent would hardly show."""
    made: QIcon = qtawesome.icon(
        f"mdi6.{name}",
        color=colour,
        color_disabled=DISABLED_TEXT,
        color_on=ACCENT if colour == TEXT else colour,
        color_selected=colour,
    )
    return made


def task_icon(task: str) -> QIcon:
    return icon(TASK_ICONS.get(task, "image-edit-outline"))


def task_title(task: str) -> str:
    return TASK_TITLES.get(task, task.capitalize())
