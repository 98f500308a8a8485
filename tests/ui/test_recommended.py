"""The first-run page and the Models panel offer the recommended models: size, licences,
progress, cancel; the download runs off the GUI thread against a local server (127.0.0.1)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.engine import models
from studio.engine.models import recommended
from studio.engine.models.defaults import pinned_defaults
from studio.engine.registry import build_registry
from studio.ui.models_panel import ModelsPanel
from studio.ui.welcome import WelcomePage
from tests.engine.models.helpers import FileServer, entry_for, save_tiny_dncnn, serve, use_catalog

pytest.importorskip("pytestqt")


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    with serve() as server:
        yield server


@pytest.fixture
def offered(
    file_server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, Any]:
    """A catalog whose only recommended model is a tiny DnCNN served on 127.0.0.1, ranked 1."""
    data = save_tiny_dncnn(tmp_path / "tiny.pth").read_bytes()
    file_server.files["tiny_dncnn.pth"] = data
    entry = entry_for(
        data,
        licence="MIT",
        commercial_use=True,
        recommended=True,
        rank=1,
        rank_note="a published figure",
        download_url=file_server.url("tiny_dncnn.pth"),
    )
    use_catalog(monkeypatch, entry)
    return {"entry": entry, "threads": []}


def test_welcome_offers_the_set_with_size_and_licence_and_installs_it(
    qtbot: Any, offered: dict[str, Any]
) -> None:
    page = WelcomePage()
    qtbot.addWidget(page)
    page.show()
    offer = page.recommended
    size_mb = f"{offered['entry'].size / 2**20:.0f} MB"
    qtbot.waitUntil(lambda: offer.get_button.isVisible() or not offer.isHidden(), timeout=5000)
    qtbot.waitUntil(lambda: size_mb in offer.get_button.text(), timeout=5000)
    assert offer.get_button.text() == f"Get the recommended model ({size_mb})"
    assert "licence MIT" in offer.details.text() and "Tiny DnCNN" in offer.details.text()
    gui_thread = threading.get_ident()
    seen: list[int] = []
    real = recommended.download

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.get_ident())
        return real(*args, **kwargs)

    pytest.MonkeyPatch().setattr(recommended, "download", watched)
    with qtbot.waitSignal(page.sig_models_changed, timeout=30000):
        offer.get_button.click()
    assert seen and gui_thread not in seen, "the download ran on the GUI thread"
    assert [m.catalog_id for m in models.installed_models()] == ["tiny-dncnn"]
    assert "Installed Tiny DnCNN" in offer.status.text()
    assert build_registry().get("denoise").id == models.installed_models()[0].id
    qtbot.waitUntil(lambda: offer.get_button.isHidden(), timeout=5000)
    offer.shutdown()


def test_cancel_stops_the_download_and_installs_nothing(
    qtbot: Any, offered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def endless(model_id: str, on_bytes: Any) -> Any:
        for done in range(10**6):
            on_bytes(done, None)  # raises DownloadCancelled once Cancel is clicked
            time.sleep(0.01)
        raise AssertionError("cancel was not honoured")

    monkeypatch.setattr(recommended, "download", endless)
    page = WelcomePage()
    qtbot.addWidget(page)
    page.show()
    offer = page.recommended
    qtbot.waitUntil(lambda: "MB" in offer.get_button.text(), timeout=5000)
    offer.get_button.click()
    qtbot.waitUntil(lambda: "Getting Tiny DnCNN" in offer.status.text(), timeout=5000)
    assert offer.cancel_button.isVisible() and offer.progress.isVisible()
    offer.cancel_button.click()
    qtbot.waitUntil(lambda: offer.status.text().startswith("Cancelled"), timeout=5000)
    assert not offer.cancel_button.isVisible() and not offer.progress.isVisible()
    assert models.installed_models() == []
    offer.shutdown()


def test_models_panel_offers_the_tasks_model_shows_why_and_pins_a_default(
    qtbot: Any, offered: dict[str, Any]
) -> None:
    panel = ModelsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_registry(build_registry())
    panel.set_task("denoise")
    qtbot.waitUntil(lambda: "MB" in panel.recommended.get_button.text(), timeout=5000)
    assert "Tiny DnCNN" in panel.recommended.details.text()
    assert panel.default_note.text().startswith("Default: ")
    assert not panel.make_default_button.isEnabled()  # the default is selected
    assert panel.select_engine("nlm")
    assert panel.make_default_button.isEnabled()
    with qtbot.waitSignal(panel.sig_models_changed, timeout=2000):
        panel.make_default_button.click()
    assert pinned_defaults() == {"denoise": "nlm"}
    panel.set_registry(build_registry())
    assert "you made it the default" in panel.default_note.text()
    assert panel.default_note.text().startswith("Default: Non-local means")
    panel.set_task("inpaint")
    qtbot.waitUntil(
        lambda: "No model qualifies yet for Inpaint" in panel.recommended.details.text()
    )
    assert panel.recommended.details.toolTip() == "Inpaint: no model in the catalog for this task"
    panel.recommended.shutdown()


def test_window_texts_name_no_cli_flags(qtbot: Any, offered: dict[str, Any]) -> None:
    page = WelcomePage()
    qtbot.addWidget(page)
    page.show()
    panel = ModelsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_registry(build_registry())
    panel.set_task("inpaint")
    qtbot.waitUntil(lambda: bool(panel.recommended.details.text()), timeout=5000)
    texts = [page.how_to_add.text(), panel.recommended.details.text(), panel.default_note.text()]
    for spec in build_registry().engines("inpaint"):
        texts.append(spec.available(panel.context).reason)
    for text in texts:
        assert "--" not in text and "studio " not in text, text
    page.recommended.shutdown()
    panel.recommended.shutdown()
