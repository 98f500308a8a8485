"""The Models panel leaves room to see that there are several engines to choose from."""

from __future__ import annotations

from tests.ui.conftest import choose_engine


def test_the_engine_list_shows_two_engines_at_the_default_window_size(qtbot, window) -> None:
    choose_engine(window, "deblur", "blind")
    engine_list = window.models_panel.engine_list
    qtbot.waitUntil(lambda: window.docks.default_state is not None)
    assert (window.width(), window.height()) == (1440, 900)
    first_two = [engine_list.visualItemRect(engine_list.item(row)) for row in (0, 1)]
    assert all(engine_list.viewport().rect().contains(rect) for rect in first_two)
