"""Editors generated from pydantic fields: adding a parameter to an engine needs no UI code.

`editor_for(field)` looks at the field's type and bounds: bounded numbers get a labelled
slider, other numbers a spin box, `Literal` and `Enum` a combo box, `bool` a check box, `Path`
a file picker (with "No file" for None), `str` a line edit, and anything else a JSON line
edit. `X | None` with a None default adds an "Auto" check box.
"""

from __future__ import annotations

import json
import math
import types
import typing
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

from pydantic.fields import FieldInfo
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSlider,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)
from superqt import QLabeledDoubleSlider, QLabeledSlider

from studio.ui.icons import icon

_UNBOUNDED = 1e9


class FieldEditor(QWidget):
    """One parameter's editor: `value()`, `set_value()`, and `sig_value_changed`."""

    sig_value_changed = Signal()
    """The user (or `set_value`) changed the value."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def set_invalid(self, invalid: bool) -> None:
        """Mark the editor red (style sheet `[invalid="true"]`)."""
        for child in [self, *self.findChildren(QWidget)]:
            child.setProperty("invalid", invalid)
            child.style().unpolish(child)
            child.style().polish(child)


class BoolEditor(FieldEditor):
    def __init__(self) -> None:
        super().__init__()
        self._box = QCheckBox()
        self._box.toggled.connect(self.sig_value_changed)
        self._layout.addWidget(self._box)
        self._layout.addStretch()

    def value(self) -> bool:
        return self._box.isChecked()

    def set_value(self, value: Any) -> None:
        self._box.setChecked(bool(value))


class ChoiceEditor(FieldEditor):
    def __init__(self, choices: list[tuple[str, Any]]) -> None:
        super().__init__()
        self._combo = QComboBox()
        for label, value in choices:
            self._combo.addItem(label, value)
        self._combo.currentIndexChanged.connect(self.sig_value_changed)
        self._layout.addWidget(self._combo, 1)

    def value(self) -> Any:
        return self._combo.currentData()

    def set_value(self, value: Any) -> None:
        for index in range(self._combo.count()):
            data = self._combo.itemData(index)
            if data == value or (isinstance(data, Enum) and data.value == value):
                self._combo.setCurrentIndex(index)
                return


class SliderEditor(FieldEditor):
    """A labelled slider between two bounds (exclusive bounds nudged inwards by one step)."""

    def __init__(self, low: float, high: float, integer: bool) -> None:
        super().__init__()
        self._integer = integer
        if integer:
            self._slider: QLabeledSlider | QLabeledDoubleSlider = QLabeledSlider(
                Qt.Orientation.Horizontal
            )
            self._slider.setRange(int(low), int(high))
        else:
            slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            decimals = _decimals(high - low)
            slider.setDecimals(decimals)
            slider.setRange(low, high)
            slider.setSingleStep(10.0**-decimals)  # type: ignore[arg-type]
            self._slider = slider
        self._slider.setEdgeLabelMode(QLabeledSlider.EdgeLabelMode.LabelIsValue)
        self._slider.valueChanged.connect(self.sig_value_changed)
        self._layout.addWidget(self._slider, 1)

    def value(self) -> float | int:
        value = self._slider.value()
        return int(value) if self._integer else float(value)

    def set_value(self, value: Any) -> None:
        self._slider.setValue(value)


class SpinEditor(FieldEditor):
    """A spin box for numbers bounded on one side or not at all.

    Any number can be typed; one the model refuses is shown as an error under the field.
    """

    def __init__(self, integer: bool) -> None:
        super().__init__()
        self._integer = integer
        if integer:
            self._spin: QSpinBox | QDoubleSpinBox = QSpinBox()
            self._spin.setRange(-(2**31) + 1, 2**31 - 1)
        else:
            spin = QDoubleSpinBox()
            spin.setDecimals(4)
            spin.setRange(-_UNBOUNDED, _UNBOUNDED)
            spin.setSingleStep(0.1)
            self._spin = spin
        self._spin.setKeyboardTracking(False)
        self._spin.valueChanged.connect(self.sig_value_changed)
        self._layout.addWidget(self._spin, 1)

    def value(self) -> float | int:
        value = self._spin.value()
        return int(value) if self._integer else float(value)

    def set_value(self, value: Any) -> None:
        self._spin.setValue(value)


class TextEditor(FieldEditor):
    """A line edit; `as_json` parses what is typed as JSON (lists, tuples, dicts)."""

    def __init__(self, as_json: bool = False) -> None:
        super().__init__()
        self._json = as_json
        self._edit = QLineEdit()
        self._edit.editingFinished.connect(self.sig_value_changed)
        self._layout.addWidget(self._edit, 1)

    def value(self) -> Any:
        text = self._edit.text()
        if not self._json:
            return text
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # the model then reports it as invalid

    def set_value(self, value: Any) -> None:
        self._edit.setText(json.dumps(value) if self._json else str(value))


class PathEditor(FieldEditor):
    """A file picker: the chosen file's name (or "No file"), Choose… and a Clear button.

    No file means None; a path may also be typed or pasted.
    """

    def __init__(self) -> None:
        super().__init__()
        self._edit = QLineEdit()
        self._edit.setPlaceholderText("No file")
        self._edit.editingFinished.connect(self._on_edited)
        browse = QToolButton()
        browse.setIcon(icon("folder-open-outline"))
        browse.setToolTip("Choose a file…")
        browse.clicked.connect(self._browse)
        self.clear_button = QToolButton()
        self.clear_button.setIcon(icon("close"))
        self.clear_button.setToolTip("No file")
        self.clear_button.clicked.connect(lambda: self._choose(""))
        self._layout.addWidget(self._edit, 1)
        self._layout.addWidget(browse)
        self._layout.addWidget(self.clear_button)
        self._show_state()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file", self._edit.text())
        if path:
            self._choose(path)

    def _choose(self, text: str) -> None:
        self._edit.setText(text)
        self._on_edited()

    def _on_edited(self) -> None:
        self._show_state()
        self.sig_value_changed.emit()

    def _show_state(self) -> None:
        self.clear_button.setEnabled(bool(self._edit.text().strip()))

    def value(self) -> Path | None:
        text = self._edit.text().strip()
        return Path(text) if text else None

    def set_value(self, value: Any) -> None:
        self._edit.setText("" if value is None else str(value))
        self._show_state()


class OptionalEditor(FieldEditor):
    """'Auto' (None) or a value from the inner editor, which is hidden while Auto is ticked
    (its value would mean nothing then)."""

    def __init__(self, inner: FieldEditor) -> None:
        super().__init__()
        self._inner = inner
        self._auto = QCheckBox("Auto")
        self._auto.toggled.connect(self._on_auto)
        inner.sig_value_changed.connect(self.sig_value_changed)
        self._layout.addWidget(self._auto)
        self._layout.addWidget(inner, 1)

    def _on_auto(self, auto: bool) -> None:
        self._inner.setVisible(not auto)
        self.sig_value_changed.emit()

    def value(self) -> Any:
        return None if self._auto.isChecked() else self._inner.value()

    def set_value(self, value: Any) -> None:
        self._auto.setChecked(value is None)
        if value is not None:
            self._inner.set_value(value)


def editor_for(field: FieldInfo) -> FieldEditor:
    """The editor for one pydantic field, set to the field's default."""
    annotation, optional = _strip_optional(field.annotation)
    editor = _editor_for_type(annotation, field)
    if optional and not isinstance(editor, PathEditor):  # a file picker has its own "No file"
        editor = OptionalEditor(editor)
    default = field.get_default(call_default_factory=True)
    if default is not None or optional:
        editor.set_value(default)
    if field.description:
        editor.setToolTip(field.description)
    WheelGuard(editor)
    return editor


class WheelGuard(QObject):
    """Lets the wheel scroll the Inspector past sliders, spin boxes and combo boxes: they take
    it only once clicked (focused), so scrolling never changes a value by accident."""

    def __init__(self, editor: QWidget) -> None:
        super().__init__(editor)
        wheeled = (QAbstractSlider, QAbstractSpinBox, QComboBox)
        for widget in [editor, *editor.findChildren(QWidget)]:
            if isinstance(widget, wheeled):
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
                widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        wheel = event.type() == QEvent.Type.Wheel
        if wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # goes on to the parent: the scroll area scrolls
            return True
        return super().eventFilter(watched, event)


def _editor_for_type(annotation: Any, field: FieldInfo) -> FieldEditor:
    if typing.get_origin(annotation) is typing.Literal:
        return ChoiceEditor([(str(choice), choice) for choice in typing.get_args(annotation)])
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return ChoiceEditor([(_enum_label(member), member) for member in annotation])
    if annotation is bool:
        return BoolEditor()
    if annotation in (int, float):
        integer = annotation is int
        low, high = bounds(field, integer)
        if math.isfinite(low) and math.isfinite(high):
            return SliderEditor(low, high, integer)
        return SpinEditor(integer)
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return PathEditor()
    if annotation is str:
        return TextEditor()
    return TextEditor(as_json=True)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(annotation)):
            return args[0], True
    return annotation, False


def bounds(field: FieldInfo, integer: bool) -> tuple[float, float]:
    """The closed range a field accepts (exclusive bounds nudged inwards by one step)."""
    low, high = -math.inf, math.inf
    for item in field.metadata:
        ge, gt = getattr(item, "ge", None), getattr(item, "gt", None)
        le, lt = getattr(item, "le", None), getattr(item, "lt", None)
        if ge is not None:
            low = max(low, float(ge))
        if le is not None:
            high = min(high, float(le))
        if gt is not None or lt is not None:
            span = (high if lt is None else float(lt)) - (low if gt is None else float(gt))
            step = 1.0 if integer else 10.0 ** -_decimals(span)
            if gt is not None:
                low = max(low, float(gt) + step)
            if lt is not None:
                high = min(high, float(lt) - step)
    return low, high


def _decimals(span: float) -> int:
    """Decimals for a slider over `span` (a spin box's 4 when unbounded)."""
    if not math.isfinite(span):
        return 4
    if span >= 100:
        return 1
    if span >= 10:
        return 2
    return 3


def _enum_label(member: Enum) -> str:
    return str(member.value).replace("_", " ").capitalize()


def field_label(name: str, field: FieldInfo) -> str:
    return field.title or name.replace("_", " ").capitalize()
