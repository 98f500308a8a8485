"""The window's engines and models: loading the registry off the GUI thread, importing and
managing models, and following the engine the user chooses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt

from studio.core import paths
from studio.core.protocol import HINTS, MASK, EngineSpec
from studio.core.registry import Registry
from studio.ui.canvas import Tool
from studio.ui.icons import task_title
from studio.ui.models_dialog import ModelsDialog, ask_model_file
from studio.ui.window_tools import takes_a_region

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


def build_registry() -> Registry:
    from studio.engine.registry import build_registry

    return build_registry()


class WindowModels:
    """The engines the window offers and the models behind them."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def set_registry(self, registry: Registry) -> None:
        w = self.window
        w.registry = registry
        w.jobs.registry = registry
        w.models_panel.set_registry(registry)
        w.welcome.set_engines(registry, w.models_panel._status)
        self._refresh_installed_models()
        w.sig_registry_ready.emit()

    def _refresh_installed_models(self) -> None:
        def names() -> list[str]:
            from studio.engine.models import installed_models

            return [f"{m.name} ({task_title(m.task)})" for m in installed_models()]

        welcome = self.window.welcome
        self.window.background.call(
            names,
            on_done=lambda found: welcome.set_models(found, paths.models_dir()),
            on_error=lambda err: welcome.set_models([], paths.models_dir(), str(err)),
        )

    def reload_registry(self) -> None:
        w = self.window
        w.background.call(
            build_registry,
            on_done=self.set_registry,
            on_error=lambda err: w.notify(f"Could not load the engines: {err}", error=True),
        )

    def choose_model_file(self) -> None:
        path = ask_model_file(self.window)
        if path:
            self.import_model(path)

    def import_model(self, path: Path) -> None:
        from studio.engine.models import import_model

        w = self.window
        w.notify(f"Importing {path.name}…")

        def done(model: Any) -> None:
            w.notify(f"Imported {model.name} for {task_title(model.task)}")
            self.reload_registry()

        w.background.call(
            import_model, path, on_done=done, on_error=lambda e: w.notify(str(e), error=True)
        )

    def choose_model_file_to_run(self) -> None:
        path = ask_model_file(self.window, "Run a model file")
        if path:
            self.window.models_panel.set_model_file(path)
            self.window.notify(f"'Model file' engines will run {path.name}")

    def manage_models(self) -> None:
        dialog = ModelsDialog(self.window.background, self.window)
        dialog.sig_models_changed.connect(self.reload_registry)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def on_engine_chosen(self, spec: EngineSpec | None) -> None:
        w = self.window
        task = w.models_panel.task
        reason = ""
        if spec is None and task:
            reason = (
                f"No {task_title(task)} engine can run on this machine yet: each needs a model. "
                "Import one with Models › Import model…, or download one in Manage models…"
            )
        w.inspector.set_engine(spec, reason)
        w.task_inputs.show_for(spec)
        brushing = w.canvas.tool in (Tool.BRUSH, Tool.ERASER)
        if spec is not None and spec.takes(MASK):
            w.tools.set_tool(Tool.BRUSH)
        elif spec is not None and spec.takes(HINTS) and brushing:
            w.tools.set_tool(Tool.HINT)  # the mask brush in hand becomes the hint brush
        elif w.canvas.tool is Tool.REGION and not takes_a_region(spec):
            w.tools.set_tool(Tool.PAN)
        w.tools.show_region()
        w.update_actions()
        w.jobs.schedule_preview()
