"""Screenshots of the studio window's main states, rendered on a virtual X display.

    python -m benchmarks.screenshots [--out screenshots] [--size 1600x1000]

Starts Xvfb when no DISPLAY is set, opens the window with a fresh settings folder (so it
shows the first-run screen), and drives it through: the welcome screen, an image open, a
painted mask, a job running, a deblur's estimation region and kernel, before/after, A/B
compare, HDR brackets, the style well, colour hints, the model manager, and a batch in
progress. Writes one PNG per state into --out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.ui import _spin


def start_xvfb(size: str) -> subprocess.Popen[bytes] | None:
    """A private Xvfb server (DISPLAY is set for this process); None when one is not needed."""
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is not installed: apt-get install xvfb (or set DISPLAY)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        display = pipe.readline().strip()
    os.environ["DISPLAY"] = f":{display}"
    return server


class Shooter:
    """Drives one window and saves what it looks like."""

    def __init__(self, out: Path, size: tuple[int, int]) -> None:
        from studio.ui.app import create_application
        from studio.ui.main_window import MainWindow

        self.out = out
        self.app = create_application()
        self.window = MainWindow()
        self.window.resize(*size)
        self.window.show()
        self.ended: dict[int, str] = {}
        self.opened: list[Any] = []
        self.window.sig_job_ended.connect(lambda job_id, how: self.ended.__setitem__(job_id, how))
        self.window.sig_document_opened.connect(self.opened.append)

    def wait(self, until: Callable[[], bool], timeout_s: float = 60.0) -> bool:
        return _spin(self.app, until, timeout_s)

    def settle(self, seconds: float = 0.4) -> None:
        deadline = time.perf_counter() + seconds
        self.wait(lambda: time.perf_counter() > deadline, seconds + 1)

    def shot(self, name: str, widget: Any = None) -> Path:
        self.settle()
        path = self.out / f"{name}.png"
        (widget or self.window).grab().save(str(path))
        print(f"  {path}")
        return path

    def open_sample(self, task: str) -> Any:
        window = self.window
        cards = window.welcome.sample_cards()
        sample = next(card.sample for card in cards if card.sample.task == task)
        count = len(self.opened)
        window.photos.open_sample(sample)
        self.wait(lambda: len(self.opened) > count)
        self.settle(1.0)
        return self.opened[-1]

    def run(self, task: str, engine: str, values: dict[str, Any] | None = None) -> int | None:
        window = self.window
        window.models_panel.set_task(task)
        if not window.models_panel.select_engine(engine):
            print(f"  ({task}/{engine} is not available here)")
            return None
        if values:
            window.inspector.set_values(values)
        return window.run_current()


def capture(out: Path, size: tuple[int, int]) -> list[Path]:
    from PySide6.QtCore import QPointF, QRect, Qt
    from PySide6.QtGui import QColor, QMouseEvent
    from PySide6.QtWidgets import QApplication

    from studio.ui.canvas import Tool

    s = Shooter(out, size)
    w = s.window
    print("Waiting for the engines, the device and the samples…")
    s.wait(lambda: bool(w.registry.tasks()) and bool(w.welcome.sample_cards()), 180)
    s.wait(lambda: w.device_description != "detecting…", 180)
    shots = [s.shot("01-welcome")]

    document = s.open_sample("denoise")
    w.models_panel.set_task("denoise")
    shots.append(s.shot("02-image-open"))

    job = s.run("denoise", "nlm")
    if job is not None:
        s.wait(lambda: job in s.ended, 600)
        w.canvas.set_zoom(2.0)
        w.canvas.centerOn(QPointF(330, 420))
        w.act["split"].setChecked(True)
        shots.append(s.shot("03-before-after"))
        w.history_panel.sig_compare_requested.emit(0, "A")
        w.canvas_panel.compare.views[0].set_zoom(2.0)
        w.canvas_panel.compare.views[0].centerOn(QPointF(640, 300))
        w.docks["history"].raise_()
        shots.append(s.shot("04-ab-compare"))
        w.act["compare"].setChecked(False)
        w.act["split"].setChecked(False)
        w.docks["models"].raise_()

    document = s.open_sample("inpaint")
    s.wait(lambda: not document.mask.is_empty(), 30)
    w.tools.set_tool(Tool.BRUSH)
    w.canvas_panel.set_brush_size(36)
    w.canvas.zoom_fit()
    viewport = w.canvas.viewport()
    path = [QPointF(120 + 8 * i, 120 + 3 * i) for i in range(30)]
    for kind, point in [
        ("press", path[0]),
        *(("move", p) for p in path[1:]),
        ("release", path[-1]),
    ]:
        pos = w.canvas.mapFromScene(point).toPointF()
        event_type = {
            "press": QMouseEvent.Type.MouseButtonPress,
            "move": QMouseEvent.Type.MouseMove,
            "release": QMouseEvent.Type.MouseButtonRelease,
        }[kind]
        buttons = Qt.MouseButton.NoButton if kind == "release" else Qt.MouseButton.LeftButton
        event = QMouseEvent(
            event_type,
            pos,
            viewport.mapToGlobal(pos),
            Qt.MouseButton.LeftButton,
            buttons,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(viewport, event)
    hover = w.canvas.mapFromScene(QPointF(520, 240)).toPointF()
    QApplication.sendEvent(
        viewport,
        QMouseEvent(
            QMouseEvent.Type.MouseMove,
            hover,
            viewport.mapToGlobal(hover),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )
    shots.append(s.shot("05-mask-painted"))
    w.tools.set_tool(Tool.PAN)

    document = s.open_sample("deblur")
    width, height = document.current.image.width, document.current.image.height
    document.set_region(QRect(width // 4, height // 4, width // 2, height // 2))
    job = s.run("deblur", w.registry.engines("deblur")[0].id)
    if job is not None:
        s.wait(lambda: w.progress_panel.records[job].started is not None, 60)
        s.settle(2.5)
        shots.append(s.shot("06-job-running"))
        s.wait(lambda: job in s.ended, 900)
        shots.append(s.shot("06b-deblur-region-and-kernel"))

    document = s.open_sample("hdr")
    s.wait(lambda: len(document.brackets) == 3, 30)
    w.models_panel.set_task("hdr")
    s.settle(1.0)
    shots.append(s.shot("07-hdr-brackets"))

    document = s.open_sample("style")
    s.wait(lambda: document.style is not None, 30)
    w.models_panel.set_task("style")
    s.wait(lambda: w.style_well.list.count() > 0, 60)
    s.settle(1.0)
    shots.append(s.shot("08-style-well"))

    document = s.open_sample("colorize")
    w.models_panel.set_task("colorize")
    w.tools.set_tool(Tool.HINT)
    for colour, centre in ((QColor(70, 120, 210), (300, 80)), (QColor(60, 140, 60), (480, 600))):
        w.canvas_panel.set_hint_colour(colour)
        document.hints.begin_stroke(QPointF(*centre), 14, colour=colour)
        document.hints.stroke_to(QPointF(centre[0] + 60, centre[1] + 10))
        document.hints.end_stroke()
    shots.append(s.shot("09-colour-hints"))
    w.tools.set_tool(Tool.PAN)

    w.engines.manage_models()
    dialogs = [d for d in w.findChildren(object) if type(d).__name__ == "ModelsDialog"]
    if dialogs:
        s.wait(lambda: dialogs[0].table.rowCount() > 0, 30)
        shots.append(s.shot("10-models-dialog", dialogs[0]))
        dialogs[0].close()

    source = out.parent / f"{out.name}-batch-input"
    source.mkdir(exist_ok=True)
    samples_dir = Path(w.welcome.sample_cards()[0].sample.images[0]).parent
    for index, picture in enumerate(sorted(samples_dir.glob("*.png"))[:8]):
        shutil.copy(picture, source / f"shot_{index:02d}.png")
    (source / "shot_99.png").write_bytes(b"not a picture")
    w.models_panel.set_task("denoise")
    w.models_panel.select_engine("gaussian")
    w.batch_panel.add_sources([source])
    w.batch_panel.out_dir.setText(str(out.parent / f"{out.name}-batch-output"))
    w.batch_panel.replan()
    w.docks.show_batch()
    w.batch_panel.start()
    s.wait(lambda: sum(v.value == "done" for v in w.batch_panel.statuses.values()) >= 2, 300)
    shots.append(s.shot("11-batch-in-progress"))
    s.wait(lambda: not w.batch_panel.running, 600)
    shots.append(s.shot("12-batch-finished"))
    shutil.rmtree(source, ignore_errors=True)
    shutil.rmtree(out.parent / f"{out.name}-batch-output", ignore_errors=True)
    w.shutdown()  # no close: it would ask about the unexported results
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--size", default="1600x1000", help="window size WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    server = start_xvfb(f"{width + 200}x{height + 200}")
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="studio-shots-") as home:
        os.environ["STUDIO_HOME"] = home
        try:
            shots = capture(args.out.resolve(), (width, height))
        finally:
            if server is not None:
                server.terminate()
    print(f"{len(shots)} screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
