"""Manage models: the catalog and the installed models; import, verify, remove, download.

Everything that touches files or the network runs off the GUI thread. Nothing is downloaded
unless the user clicks Download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core import paths
from studio.engine import models
from studio.ui.background import Background
from studio.ui.icons import icon, task_title

COLUMNS = ["Model", "Task", "Architecture", "Licence", "Size", "Status"]


def format_size(size: int | None) -> str:
    if not size:
        return "?"
    return f"{size / 2**20:.1f} MB" if size < 2**30 else f"{size / 2**30:.2f} GB"


class _Relay(QObject):
    sig_progressed = Signal(float, float)
    """Download progress from the worker thread: (bytes done, total bytes or -1 when unknown).

    Floats, not None: PySide6 loses a reference to None on each cross-thread emit, and a Qt
    int overflows past 2 GB."""

    def forward(self, done: int, total: int | None) -> None:
        self.sig_progressed.emit(float(done), float(total or -1))


MODEL_FILES = "Model files (*.pth *.pt *.ckpt *.safetensors *.bin *.model *.zip);;All files (*)"


def ask_model_file(parent: QWidget, title: str = "Import a model") -> Path | None:
    """The model file the user picks in an open dialog, or None."""
    path, _ = QFileDialog.getOpenFileName(parent, title, "", MODEL_FILES)
    return Path(path) if path else None


class ModelsDialog(QDialog):
    """A table of catalog and installed models with the actions on them."""

    sig_models_changed = Signal()
    """Models were imported, removed or downloaded: the registry should be rebuilt."""

    def __init__(self, background: Background, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Manage models")
        self.resize(940, 560)
        self._background = background
        self._relay = _Relay(self)
        self._relay.sig_progressed.connect(self._on_download_progress)
        self._rows: list[dict[str, Any]] = []
        self._verified: dict[str, tuple[bool, str]] = {}
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name, task, architecture or licence")
        self.filter.textChanged.connect(self._apply_filter)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.status = QLabel()
        self.status.setObjectName("dimText")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFixedHeight(8)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.import_file = QPushButton(icon("file-import-outline"), "Import file…")
        self.import_file.clicked.connect(self._import_file)
        self.import_dir = QPushButton(icon("folder-download-outline"), "Import folder…")
        self.import_dir.clicked.connect(self._import_folder)
        self.verify_button = QPushButton(icon("shield-check-outline"), "Verify all")
        self.verify_button.clicked.connect(self._verify)
        self.remove_button = QPushButton(icon("delete-outline"), "Remove")
        self.remove_button.clicked.connect(self._remove)
        self.download_button = QPushButton(icon("download"), "Download")
        self.download_button.setToolTip("Fetch the selected model from its official source")
        self.download_button.clicked.connect(self._download)
        open_folder = QPushButton(icon("folder-outline"), "Open models folder")
        open_folder.clicked.connect(self._open_folder)
        actions = QHBoxLayout()
        for button in (self.import_file, self.import_dir, self.verify_button):
            actions.addWidget(button)
        actions.addStretch(1)
        for button in (self.download_button, self.remove_button, open_folder):
            actions.addWidget(button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(close)
        self.refresh()

    # -- the table ----------------------------------------------------------------------------

    def refresh(self) -> None:
        self._busy("Reading the catalog and your models…")
        self._background.call(_load_rows, on_done=self._show_rows, on_error=self._failed)

    def _show_rows(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows
        self.table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            status = row["status"]
            if row["id"] in self._verified:
                ok, reason = self._verified[row["id"]]
                status = "Verified" if ok else f"Problem: {reason}"
            values = [
                row["name"],
                task_title(row["task"]),
                row["architecture"],
                row["licence"],
                format_size(row["size"]),
                status,
            ]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(row["tooltip"] if column == 0 else value)
                if column == 5 and row["installed"]:
                    item.setIcon(icon("check-circle-outline"))
                self.table.setItem(index, column, item)
        self._apply_filter()
        installed = sum(row["installed"] for row in rows)
        self._idle(f"{installed} installed, {len(rows)} known. Models live in {paths.models_dir()}")

    def _apply_filter(self) -> None:
        needle = self.filter.text().lower()
        for index, row in enumerate(self._rows):
            haystack = " ".join(str(v) for v in row.values()).lower()
            self.table.setRowHidden(index, bool(needle) and needle not in haystack)

    def _selected(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows()
        return self._rows[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        row = self._selected()
        self.remove_button.setEnabled(row is not None and row["installed"])
        self.download_button.setEnabled(
            row is not None and not row["installed"] and row["downloadable"]
        )

    # -- actions ------------------------------------------------------------------------------

    def _import_file(self) -> None:
        path = ask_model_file(self)
        if path:
            self._busy(f"Importing {path.name}…")
            self._background.call(
                models.import_model, path, on_done=self._imported, on_error=self._failed
            )

    def _import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import every model in a folder")
        if folder:
            self._busy(f"Importing models from {folder}…")
            self._background.call(
                models.import_folder, Path(folder), on_done=self._imported, on_error=self._failed
            )

    def _imported(self, result: Any) -> None:
        results = result if isinstance(result, list) else None
        if results is None:
            message = f"Imported {result.name}."
        else:
            good = [r for r in results if r.model is not None]
            bad = [f"{r.path.name}: {r.error}" for r in results if r.error is not None]
            message = f"Imported {len(good)} model(s)." + (
                " Refused: " + "; ".join(bad) if bad else ""
            )
        self.sig_models_changed.emit()
        self.refresh()
        self.status.setText(message)

    def _verify(self) -> None:
        self._busy("Verifying checksums…")
        self._background.call(models.verify, on_done=self._verified_done, on_error=self._failed)

    def _verified_done(self, results: list[Any]) -> None:
        self._verified = {r.model.id: (r.ok, r.reason) for r in results}
        bad = [r for r in results if not r.ok]
        self._show_rows(self._rows)
        self._idle(
            f"All {len(results)} installed model(s) verified."
            if not bad
            else f"{len(bad)} of {len(results)} model(s) have problems: see Status."
        )

    def _remove(self) -> None:
        row = self._selected()
        if row is None or not row["installed"]:
            return
        self._busy(f"Removing {row['name']}…")
        self._background.call(
            models.remove, row["id"], on_done=self._removed, on_error=self._failed
        )

    def _removed(self, model: Any) -> None:
        self.sig_models_changed.emit()
        self.refresh()
        self.status.setText(f"Removed {model.name}.")

    def _download(self) -> None:
        row = self._selected()
        if row is None:
            return
        self._busy(f"Downloading {row['name']}…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._background.call(
            models.download,
            row["id"],
            self._relay.forward,
            on_done=self._imported,
            on_error=self._failed,
        )

    def _on_download_progress(self, done: float, total: float) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(done / total * 1000))
        known = format_size(int(total)) if total > 0 else None
        self.status.setText(f"Downloading… {format_size(int(done))} of {known or '?'}")

    def _open_folder(self) -> None:
        folder = paths.models_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _busy(self, message: str) -> None:
        self.status.setText(message)
        for button in (self.import_file, self.import_dir, self.verify_button):
            button.setEnabled(False)
        self.remove_button.setEnabled(False)
        self.download_button.setEnabled(False)

    def _idle(self, message: str) -> None:
        self.progress.hide()
        self.status.setText(message)
        for button in (self.import_file, self.import_dir, self.verify_button):
            button.setEnabled(True)
        self._update_buttons()

    def _failed(self, error: BaseException) -> None:
        self._idle(f"Failed: {getattr(error, 'window_text', error)}")
        self.status.setObjectName("errorText")


def _load_rows() -> list[dict[str, Any]]:
    """Catalog entries, marked installed where they are, then installed models not in it."""
    installed = models.installed_models()
    by_catalog = {m.catalog_id: m for m in installed if m.catalog_id}
    rows = []
    for entry in models.catalog():
        model = by_catalog.get(entry.id)
        rows.append(
            {
                "id": model.id if model else entry.id,
                "name": entry.name,
                "task": entry.task,
                "architecture": entry.architecture,
                "licence": entry.licence,
                "size": entry.size,
                "installed": model is not None,
                "downloadable": entry.download_url is not None,
                "status": "Installed" if model else "Not installed",
                "tooltip": f"{entry.id}\n{entry.source}\n{entry.notes}".strip(),
            }
        )
    for model in installed:
        if model.catalog_id is None:
            rows.append(
                {
                    "id": model.id,
                    "name": model.name,
                    "task": model.task,
                    "architecture": model.architecture,
                    "licence": model.licence,
                    "size": model.size,
                    "installed": True,
                    "downloadable": False,
                    "status": "Installed (imported)",
                    "tooltip": f"{model.id}\n{model.source}",
                }
            )
    return rows
