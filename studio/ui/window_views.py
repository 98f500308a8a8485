"""How the window shows a photo: before/after, the split, the A/B view, and the readouts of
the pixel under the cursor and of the compute device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio.ui.canvas import Compare

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


class WindowViews:
    """Before/after, split and A/B comparison of the current photo; the status readouts."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def set_before(self, on: bool) -> None:
        act = self.window.act
        if on:
            act["split"].setChecked(False)
        after = Compare.SPLIT if act["split"].isChecked() else Compare.AFTER
        self.window.canvas.set_compare(Compare.BEFORE if on else after)

    def set_split(self, on: bool) -> None:
        canvas = self.window.canvas
        if on:
            self.window.act["before"].setChecked(False)
            visible = canvas.visible_image_rect()
            width = canvas.image_item.boundingRect().width()
            if width and not visible.isEmpty():
                canvas.set_split((visible.center().x() + 0.5) / width)
        canvas.set_compare(Compare.SPLIT if on else Compare.AFTER)

    def set_compare_ab(self, on: bool) -> None:
        w = self.window
        if on and w.document is not None:
            self.fill_compare()
            w.canvas_panel.show_compare()
        elif w.document is not None:
            w.canvas_panel.show_view()
        w.update_actions()

    def fill_compare(self, a: int | None = None, b: int | None = None) -> None:
        document = self.window.document
        if document is None:
            return
        compare = self.window.canvas_panel.compare
        current_a, current_b = compare.chosen()
        same = compare.steps == document.steps
        a = a if a is not None else (current_a if same else max(document.index - 1, 0))
        b = b if b is not None else (current_b if same else document.index)
        compare.set_steps(list(document.steps), a, b)

    def compare_step(self, index: int, slot: str) -> None:
        """Show step `index` as A or B in the A/B view (and open that view)."""
        if self.window.document is None:
            return
        self.fill_compare()
        self.window.canvas_panel.compare.choose(slot, index)
        self.window.act["compare"].setChecked(True)

    def on_cursor(self, x: int, y: int) -> None:
        w = self.window
        if w.document is None or x < 0:
            w.status_pixel.setText("")
            return
        image = w.document.current.image
        if not (0 <= y < image.height and 0 <= x < image.width):
            return
        values = image.pixels[y, x]
        names = "RGB" if len(values) == 3 else "L"
        text = " ".join(f"{n} {v:.3f}" for n, v in zip(names, values, strict=True))
        w.status_pixel.setText(f"x {x}  y {y}  ·  {text}")

    def on_device(self, description: str) -> None:
        self.window.status_device.setText(f"Device: {description}")
