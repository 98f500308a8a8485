"""The Inspector: the chosen engine's parameters as a form, generated from its pydantic model.

Every change is validated by the model itself; a problem shows under its field and disables
Run. Values are remembered per engine for the session, can be reset to the defaults, and saved
and loaded as named presets (JSON under the config folder). The generic opacity and "limit to
mask" controls apply to every engine through `run_job`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledSlider

from studio.core import paths
from studio.core.protocol import EngineSpec, Kind, field_applies
from studio.ui.fields import FieldEditor, WheelGuard, editor_for, field_label
from studio.ui.icons import icon


def presets_dir(spec: EngineSpec) -> Path:
    return paths.config_dir() / "presets" / spec.task / spec.id


def _preset_file(spec: EngineSpec, name: str) -> Path:
    safe = re.sub(r"[^\w\- ]+", "_", name).strip() or "preset"
    return presets_dir(spec) / f"{safe}.json"


class Inspector(QWidget):
    """Parameters of one engine, plus opacity, region, presets and the Run button."""

    sig_values_changed = Signal()
    """A parameter, the opacity or the region choice changed."""
    sig_run_requested = Signal()
    """The user pressed Run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec: EngineSpec | None = None
        self.editors: dict[str, FieldEditor] = {}
        self._errors: dict[str, QLabel] = {}
        self._remembered: dict[tuple[str, str], dict[str, Any]] = {}
        self._valid = True
        self._building = False
        self._run_allowed = True

        self._title = QLabel("No engine")
        self._title.setObjectName("engineName")
        self._description = QLabel()
        self._description.setObjectName("engineDescription")
        self._description.setWordWrap(True)
        self._banner = QLabel()
        self._banner.setObjectName("errorText")
        self._banner.setWordWrap(True)
        self._banner.hide()

        self.inputs_box = QVBoxLayout()
        self.inputs_box.setContentsMargins(0, 0, 0, 0)

        self._form_host = QWidget()
        self._form = QFormLayout(self._form_host)
        self._form.setContentsMargins(0, 0, 0, 0)
        self._form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._no_params = QLabel("This engine has no parameters.")
        self._no_params.setObjectName("dimText")

        self.opacity_slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(100)
        self.opacity_slider.setToolTip("Blend the result over the original: 100 % = full effect")
        self.opacity_slider.valueChanged.connect(self.sig_values_changed)
        WheelGuard(self.opacity_slider)
        self.limit_to_mask = QCheckBox("Only inside the painted mask")
        self.limit_to_mask.setToolTip("Apply the result only where the mask is painted")
        self.limit_to_mask.toggled.connect(self.sig_values_changed)

        self.presets = QComboBox()
        self.presets.setToolTip("Saved parameter presets for this engine")
        self.presets.activated.connect(self._on_preset_chosen)
        save_preset = QToolButton()
        save_preset.setIcon(icon("content-save-outline"))
        save_preset.setToolTip("Save these values as a preset…")
        save_preset.clicked.connect(self._ask_save_preset)
        delete_preset = QToolButton()
        delete_preset.setIcon(icon("delete-outline"))
        delete_preset.setToolTip("Delete the chosen preset")
        delete_preset.clicked.connect(self._delete_current_preset)

        self.reset_button = QPushButton(icon("restore"), "Reset")
        self.reset_button.setToolTip("Back to the engine's default values")
        self.reset_button.clicked.connect(self.reset)
        self.run_button = QPushButton(icon("play"), "Run")
        self.run_button.setObjectName("primaryButton")
        self.run_button.setToolTip("Apply to the whole image (Ctrl+Enter)")
        self.run_button.clicked.connect(self.sig_run_requested)

        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(10, 8, 10, 8)
        column.setSpacing(6)
        column.addWidget(self._title)
        column.addWidget(self._description)
        column.addLayout(self.inputs_box)
        self._engine_parts = QWidget()
        parts = QVBoxLayout(self._engine_parts)
        parts.setContentsMargins(0, 0, 0, 0)
        parts.setSpacing(6)
        parts.addWidget(_section("Parameters"))
        parts.addWidget(self._banner)
        parts.addWidget(self._form_host)
        parts.addWidget(self._no_params)
        self._output_parts = QWidget()
        output_column = QVBoxLayout(self._output_parts)
        output_column.setContentsMargins(0, 0, 0, 0)
        output_column.addWidget(_section("Output"))
        output = QFormLayout()
        output.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        output.addRow("Opacity %", self.opacity_slider)
        output.addRow("", self.limit_to_mask)
        output_column.addLayout(output)
        parts.addWidget(self._output_parts)
        parts.addWidget(_section("Presets"))
        preset_row = QHBoxLayout()
        preset_row.addWidget(self.presets, 1)
        preset_row.addWidget(save_preset)
        preset_row.addWidget(delete_preset)
        parts.addLayout(preset_row)
        column.addWidget(self._engine_parts)
        column.addStretch(1)

        scroll = QScrollArea()
        scroll.setObjectName("panelScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(10, 6, 10, 10)
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(scroll, 1)
        outer.addLayout(buttons)
        self.set_engine(None)

    # -- the engine -----------------------------------------------------------------------------

    def set_engine(self, spec: EngineSpec | None, reason: str = "") -> None:
        """Build the form for `spec`, restoring the values last used with it this session.

        With no engine, `reason` says why (shown in place of the description).
        """
        if self.spec is not None:
            self._remembered[(self.spec.task, self.spec.id)] = self.values()
        self.spec = spec
        self._building = True
        while self._form.rowCount():
            self._form.removeRow(0)
        self.editors.clear()
        self._errors.clear()
        self._banner.hide()
        if spec is None:
            self._title.setText("No engine")
            self._description.setText(reason or "Choose a task and an engine in the Models panel.")
        else:
            kind = "neural" if spec.kind is Kind.NEURAL else "built-in"
            self._title.setText(f"{spec.name}  ·  {kind}")
            self._description.setText(spec.description)
            self._output_parts.setVisible(not spec.changes_size)
            for name, field in spec.params.model_fields.items():
                editor = editor_for(field)
                editor.setObjectName(f"param_{name}")
                editor.sig_value_changed.connect(self._on_changed)
                error = QLabel()
                error.setObjectName("errorText")
                error.setWordWrap(True)
                error.hide()
                label = QLabel(field_label(name, field))
                label.setToolTip(field.description or "")
                self._form.addRow(label, editor)
                self._form.addRow("", error)
                self._form.setRowVisible(self._form.rowCount() - 1, False)
                self.editors[name] = editor
                self._errors[name] = error
        self._no_params.setVisible(spec is not None and not self.editors)
        self._engine_parts.setVisible(spec is not None)
        self.reset_button.setVisible(spec is not None)
        self._building = False
        remembered = self._remembered.get((spec.task, spec.id)) if spec else None
        if remembered:
            self._apply(remembered)
        self._refresh_presets()
        self._on_changed()

    # -- values ---------------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The form's current values, by parameter name (possibly invalid)."""
        return {name: editor.value() for name, editor in self.editors.items()}

    def params_json(self) -> dict[str, Any]:
        """The current values as the model dumps them to JSON (valid values only)."""
        assert self.spec is not None
        return self.spec.params.model_validate(self.values()).model_dump(mode="json")

    def opacity(self) -> float:
        if not self._output_parts.isVisibleTo(self):
            return 1.0  # a result of another size cannot be blended over the photo
        return float(self.opacity_slider.value()) / 100.0

    def only_in_mask(self) -> bool:
        return self._output_parts.isVisibleTo(self) and self.limit_to_mask.isChecked()

    def is_valid(self) -> bool:
        return self.spec is not None and self._valid

    def set_values(self, values: dict[str, Any]) -> bool:
        """Apply `values` if the model accepts them; otherwise keep the form and say why."""
        if self.spec is None:
            return False
        merged = {**self.values(), **values}
        try:
            self.spec.params.model_validate(merged)
        except ValidationError as err:
            self._show_banner("Not applied: " + _summary(err))
            return False
        self._apply(merged)
        self._on_changed()
        return True

    def reset(self) -> None:
        """Every parameter back to its default; opacity back to 100 %."""
        if self.spec is None:
            return
        self._apply(defaults(self.spec))
        self.opacity_slider.setValue(100)
        self._on_changed()

    def set_run_allowed(self, allowed: bool, reason: str = "") -> None:
        """Disable Run for reasons outside the form (no image, engine unavailable...)."""
        self._run_allowed = allowed
        self.run_button.setToolTip(reason or "Apply to the whole image (Ctrl+Enter)")
        self._update_run_button()

    def _apply(self, values: dict[str, Any]) -> None:
        self._building = True
        try:
            for name, value in values.items():
                if name in self.editors:
                    self.editors[name].set_value(value)
        finally:
            self._building = False

    def _on_changed(self) -> None:
        if self._building:
            return
        self._show_relevant_fields()
        self._validate()
        self.sig_values_changed.emit()

    def _show_relevant_fields(self) -> None:
        """Hide the parameters that do not matter for the current choices (a motion length
        while the blur shape is "estimate")."""
        if self.spec is None:
            return
        values = self.values()
        for name, field in self.spec.params.model_fields.items():
            shown = field_applies(field.json_schema_extra, values)
            self._form.setRowVisible(self.editors[name], shown)

    def field_shown(self, name: str) -> bool:
        """Whether the parameter's row is shown (it matters for the current choices)."""
        return self.editors[name].isVisibleTo(self)

    def _validate(self) -> None:
        for name, label in self._errors.items():
            label.hide()
            self._set_error_row_visible(name, False)
            self.editors[name].set_invalid(False)
        self._banner.hide()
        self._valid = True
        if self.spec is None:
            self._update_run_button()
            return
        try:
            self.spec.params.model_validate(self.values())
        except ValidationError as err:
            self._valid = False
            general = []
            for problem in err.errors():
                name = str(problem["loc"][0]) if problem["loc"] else ""
                if name in self._errors:
                    self._errors[name].setText(problem["msg"])
                    self._errors[name].show()
                    self._set_error_row_visible(name, True)
                    self.editors[name].set_invalid(True)
                else:
                    general.append(problem["msg"])
            if general:
                self._show_banner("; ".join(general))
        self._update_run_button()

    def _set_error_row_visible(self, name: str, visible: bool) -> None:
        position: tuple[int, object] = self._form.getWidgetPosition(self._errors[name])  # type: ignore[assignment]
        row = position[0]
        if row >= 0:
            self._form.setRowVisible(row, visible)

    def field_error(self, name: str) -> str:
        """The inline error shown under a field ('' when valid)."""
        label = self._errors[name]
        return label.text() if not label.isHidden() else ""

    def banner_text(self) -> str:
        return self._banner.text() if not self._banner.isHidden() else ""

    def _show_banner(self, text: str) -> None:
        self._banner.setText(text)
        self._banner.show()

    def _update_run_button(self) -> None:
        self.run_button.setEnabled(self._run_allowed and self.is_valid())

    # -- presets --------------------------------------------------------------------------------

    def preset_names(self) -> list[str]:
        if self.spec is None or not presets_dir(self.spec).is_dir():
            return []
        return sorted(path.stem for path in presets_dir(self.spec).glob("*.json"))

    def save_preset(self, name: str) -> Path:
        """Save the current (valid) values as preset `name`."""
        assert self.spec is not None
        path = _preset_file(self.spec, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.params_json(), indent=2) + "\n", encoding="utf-8")
        self._refresh_presets(select=path.stem)
        return path

    def load_preset(self, name: str) -> bool:
        """Apply a saved preset; a preset the model rejects is reported and not applied."""
        assert self.spec is not None
        try:
            values = json.loads(_preset_file(self.spec, name).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            self._show_banner(f"Cannot read preset {name!r}: {err}")
            return False
        return self.set_values(values) if isinstance(values, dict) else False

    def delete_preset(self, name: str) -> None:
        assert self.spec is not None
        _preset_file(self.spec, name).unlink(missing_ok=True)
        self._refresh_presets()

    def _refresh_presets(self, select: str | None = None) -> None:
        self.presets.clear()
        self.presets.addItem("Presets…", None)
        for name in self.preset_names():
            self.presets.addItem(name, name)
        if select is not None:
            self.presets.setCurrentIndex(max(self.presets.findData(select), 0))

    def _on_preset_chosen(self, index: int) -> None:
        name = self.presets.itemData(index)
        if name:
            self.load_preset(name)

    def _ask_save_preset(self) -> None:
        if not self.is_valid():
            QMessageBox.information(self, "Save preset", "Fix the highlighted values first.")
            return
        name, ok = QInputDialog.getText(self, "Save preset", "Preset name:")
        if ok and name.strip():
            self.save_preset(name.strip())

    def _delete_current_preset(self) -> None:
        name = self.presets.currentData()
        if name:
            self.delete_preset(name)


def _section(title: str) -> QLabel:
    label = QLabel(title)
    label.setObjectName("sectionTitle")
    return label


def _summary(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'values'}: {e['msg']}" for e in err.errors()
    )


def defaults(spec: EngineSpec) -> dict[str, Any]:
    """The default value of every parameter that has one."""
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in spec.params.model_fields.items()
        if not field.is_required()
    }
