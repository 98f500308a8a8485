"""The Models panel leaves room to see that there are several engines to choose from."""

from __future__ import annotations

from tests.ui.conftest import choose_engine


def test_the_engine_list_shows_two_engines_at_the_default_window_size(qtbot, window) -> None:
    choose_engine(window, "deblur", "blind")
    engine_list = window.models_panel.engine_list
    qtbot.waitUntil(lambda: window.docks.default_state is not None)
    assert (window.width(), window.height()) == (1440, 900)
    first_two = [engine_list.visualItemRect(engine_list.item(row)) for row in (0, 1)]
    shown = engine_list.viewport().visibleRegion().boundingRect()  # not scrolled off
    assert all(shown.contains(rect) for rect in first_two)


def test_no_part_of_the_models_panel_covers_another_for_any_task(qtbot, window) -> None:
    panel = window.models_panel
    qtbot.waitUntil(lambda: window.docks.default_state is not None)
    below = [panel.default_note, panel.recommended, panel.model_file_button]

    def apart() -> bool:
        tops = [widget.geometry().top() for widget in below if widget.isVisible()]
        return panel.engine_list.geometry().bottom() < min(tops)

    for task in window.registry.tasks():
        panel.set_task(task)
        qtbot.waitUntil(apart, timeout=3000)  # once the layout has settled
