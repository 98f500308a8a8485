"""The first screen: what Studio does, what works on this machine, models, and samples to try."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon, QMouseEvent, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.core.protocol import Availability, EngineSpec, Kind
from studio.core.registry import Registry
from studio.ui.icons import icon, task_icon, task_title
from studio.ui.recommended import RecommendedOffer
from studio.ui.resources import resource_path
from studio.ui.samples import Sample

LEAD = (
    "Studio repairs and transforms photographs on this computer: it removes noise and "
    "camera shake, fills scratches and unwanted objects, merges exposure brackets into HDR, "
    "colours black-and-white pictures and lends them a painting's style. Nothing leaves the "
    "machine, your originals are never overwritten, and 16-bit and float images stay that way."
)
HOW_TO_ADD = (
    "Neural engines light up when their checkpoint is installed, and the best installed one "
    "becomes its task's default. Get the recommended models above, import a file (.pth, "
    ".safetensors, .pt…) or a whole folder, or download another catalogued model in Manage "
    "models. Nothing is downloaded unless you ask. Models are kept in {folder}."
)


class SampleCard(QFrame):
    """A clickable sample: thumbnail, title, task."""

    sig_clicked = Signal()
    """The card was clicked."""

    def __init__(self, sample: Sample, thumb: QPixmap | None) -> None:
        super().__init__()
        self.sample = sample
        self.setObjectName("sampleCard")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"Open {sample.title} and choose {task_title(sample.task)}")
        picture = QLabel()
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        picture.setFixedSize(180, 120)
        if thumb is not None:
            picture.setPixmap(
                thumb.scaled(
                    180,
                    120,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        task = QLabel()
        task.setPixmap(task_icon(sample.task).pixmap(16, 16))
        title = QLabel(f"<b>{task_title(sample.task)}</b> · {sample.title}")
        description = QLabel(sample.description)
        description.setObjectName("dimText")
        description.setWordWrap(True)
        head = QHBoxLayout()
        head.addWidget(task)
        head.addWidget(title, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(picture)
        layout.addLayout(head)
        layout.addWidget(description)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.sig_clicked.emit()


class WelcomePage(QWidget):
    """Shown when no photo is open."""

    sig_open_requested = Signal()
    """Open images… was clicked."""
    sig_sample_requested = Signal(object)
    """A sample was clicked: (Sample)."""
    sig_import_requested = Signal()
    """Import model… was clicked."""
    sig_manage_requested = Signal()
    """Manage models… was clicked."""
    sig_models_changed = Signal()
    """The recommended models were installed: the engines should be listed again."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePage")
        self.recommended = RecommendedOffer()
        self.recommended.sig_models_changed.connect(self.sig_models_changed)
        logo = QLabel()
        logo.setPixmap(QIcon(str(resource_path("studio.svg"))).pixmap(72, 72))
        title = QLabel("Welcome to Studio")
        title.setObjectName("welcomeTitle")
        lead = QLabel(LEAD)
        lead.setObjectName("welcomeLead")
        lead.setWordWrap(True)
        open_button = QPushButton(icon("folder-open", "#ffffff"), "Open images…")
        open_button.setObjectName("primaryButton")
        open_button.clicked.connect(self.sig_open_requested)
        drop_hint = QLabel("or drop photos anywhere in this window")
        drop_hint.setObjectName("dimText")

        self.engines_box = QVBoxLayout()
        self.engines_box.setSpacing(6)
        self.models_box = QVBoxLayout()
        self.models_box.setSpacing(4)
        self.how_to_add = QLabel()
        self.how_to_add.setObjectName("dimText")
        self.how_to_add.setWordWrap(True)
        self.how_to_add.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        import_button = QPushButton(icon("file-import-outline"), "Import model…")
        import_button.clicked.connect(self.sig_import_requested)
        manage_button = QPushButton(icon("cog-outline"), "Manage models…")
        manage_button.clicked.connect(self.sig_manage_requested)
        self.samples_grid = QGridLayout()
        self.samples_grid.setSpacing(10)
        self.samples_note = QLabel("Preparing sample images…")
        self.samples_note.setObjectName("dimText")

        header = QHBoxLayout()
        header.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        words = QVBoxLayout()
        words.addWidget(title)
        words.addWidget(lead)
        actions = QHBoxLayout()
        actions.addWidget(open_button)
        actions.addWidget(drop_hint)
        actions.addStretch(1)
        words.addLayout(actions)
        header.addLayout(words, 1)

        engines_card = _card("Works now on this machine", self.engines_box)
        model_buttons = QHBoxLayout()
        model_buttons.addWidget(import_button)
        model_buttons.addWidget(manage_button)
        model_buttons.addStretch(1)
        models_layout = QVBoxLayout()
        models_layout.addLayout(self.models_box)
        models_layout.addSpacing(6)
        models_layout.addWidget(_subheading("Recommended models"))
        models_layout.addWidget(self.recommended)
        models_layout.addSpacing(6)
        models_layout.addWidget(self.how_to_add)
        models_layout.addLayout(model_buttons)
        models_card = _card("Your models", models_layout)
        cards = QHBoxLayout()
        cards.setSpacing(12)
        cards.addWidget(engines_card, 1)
        cards.addWidget(models_card, 1)

        column = QVBoxLayout()
        column.setSpacing(16)
        column.addLayout(header)
        column.addLayout(cards)
        column.addWidget(_heading("Try a sample"))
        column.addWidget(self.samples_note)
        column.addLayout(self.samples_grid)
        column.addStretch(1)
        body = QWidget()
        body.setObjectName("welcomePage")
        body.setMaximumWidth(1040)
        body.setLayout(column)
        centring = QHBoxLayout()
        centring.addStretch(1)
        centring.addWidget(body, 100)
        centring.addStretch(1)
        host = QWidget()
        host.setObjectName("welcomePage")
        host_layout = QVBoxLayout(host)
        host_layout.setContentsMargins(28, 24, 28, 24)
        host_layout.addLayout(centring)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(host)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def set_engines(self, registry: Registry, status: dict[tuple[str, str], Availability]) -> None:
        """One line per task: how many engines run here, and their names."""
        _clear(self.engines_box)
        for task in registry.tasks():
            specs = registry.engines(task)
            usable = [s for s in specs if status.get((s.task, s.id), Availability(True)).ok]
            row = QHBoxLayout()
            glyph = QLabel()
            glyph.setPixmap(task_icon(task).pixmap(18, 18))
            row.addWidget(glyph, 0, Qt.AlignmentFlag.AlignTop)
            row.addWidget(_engine_line(task, usable, len(specs)), 1)
            self.engines_box.addLayout(row)

    def set_models(self, names: Sequence[str], folder: Path, error: str = "") -> None:
        self.recommended.refresh()
        _clear(self.models_box)
        if error:
            label = QLabel(error)
            label.setObjectName("warningText")
            label.setWordWrap(True)
            self.models_box.addWidget(label)
        elif not names:
            label = QLabel(
                "No neural models installed yet. Every task works with its built-in engines."
            )
            label.setWordWrap(True)
            self.models_box.addWidget(label)
        for name in names:
            self.models_box.addWidget(QLabel(f"•  {name}"))
        self.how_to_add.setText(HOW_TO_ADD.format(folder=folder))

    def set_samples(self, samples: Sequence[tuple[Sample, QPixmap | None]]) -> None:
        _clear(self.samples_grid)
        self.samples_note.setText(
            "Pictures made by Studio itself, one for each job: click one to open it."
        )
        for index, (sample, thumb) in enumerate(samples):
            card = SampleCard(sample, thumb)
            card.sig_clicked.connect(lambda s=sample: self.sig_sample_requested.emit(s))
            self.samples_grid.addWidget(card, index // 3, index % 3)

    def set_samples_error(self, message: str) -> None:
        self.samples_note.setText(f"Sample images could not be made: {message}")

    def sample_cards(self) -> list[SampleCard]:
        return self.findChildren(SampleCard)


def _engine_line(task: str, usable: list[EngineSpec], total: int) -> QLabel:
    neural = sum(spec.kind is Kind.NEURAL for spec in usable)
    names = ", ".join(spec.name for spec in usable) or "none available"
    counts = f"{len(usable)} of {total}" if len(usable) != total else f"{total}"
    extra = f", {neural} neural" if neural else ""
    label = QLabel(f"<b>{task_title(task)}</b> — {counts} engine(s){extra}: {names}")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def _card(title: str, content: QVBoxLayout | QGridLayout) -> QFrame:
    frame = QFrame()
    frame.setObjectName("welcomeCard")
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(14, 12, 14, 12)
    layout.addWidget(_heading(title))
    layout.addLayout(content)
    layout.addStretch(1)
    return frame


def _subheading(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionTitle")
    return label


def _clear(layout: QVBoxLayout | QGridLayout | QHBoxLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item is None:
            break
        widget, child = item.widget(), item.layout()
        if widget is not None:
            widget.deleteLater()
        elif child is not None:
            _clear(child)  # type: ignore[arg-type]
            child.deleteLater()
