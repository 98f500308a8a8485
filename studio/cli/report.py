"""How the CLI tells the user what happens: JSON lines on stdout, or a progress bar on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from tqdm import tqdm


class Reporter:
    """Human output: a progress bar on stderr, results on stdout, problems on stderr."""

    machine = False

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._bar: tqdm[Any] | None = None

    def progress(
        self, done: int, total: int, message: str, *, unit: str = "step", **extra: Any
    ) -> None:
        """Move the bar (counting `unit`s); `extra` fields only appear in JSON output."""
        if self._bar is None:
            self._bar = tqdm(total=total, file=self.err, disable=None, leave=False, unit=unit)
        self._bar.total = total
        self._bar.n = done
        self._bar.set_description_str(message, refresh=False)
        self._bar.refresh()

    def note(self, message: str) -> None:
        """A line that must not be lost under the progress bar (e.g. an item that failed)."""
        if self._bar is not None:
            self._bar.write(message, file=self.err)
        else:
            print(message, file=self.err, flush=True)

    def event(self, name: str, text: str, **fields: Any) -> None:
        """A milestone: printed as `text` for people (nothing when `text` is empty)."""
        if text:
            self.note(text)

    def result(self, text: str, **fields: Any) -> None:
        """The final line."""
        self.close()
        print(text, file=self.out, flush=True)

    def error(self, message: str, exit_code: int) -> None:
        self.close()
        print(f"studio: {message}", file=self.err, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class JsonReporter(Reporter):
    """Machine output: one JSON object per line on stdout; errors also on stderr."""

    machine = True

    def _emit(self, **fields: Any) -> None:
        print(json.dumps(fields, default=str), file=self.out, flush=True)

    def progress(
        self, done: int, total: int, message: str, *, unit: str = "step", **extra: Any
    ) -> None:
        self._emit(event="progress", done=done, total=total, message=message, **extra)

    def note(self, message: str) -> None:
        print(message, file=self.err, flush=True)

    def event(self, name: str, text: str, **fields: Any) -> None:
        self._emit(event=name, **fields)

    def result(self, text: str, **fields: Any) -> None:
        self._emit(**fields)

    def error(self, message: str, exit_code: int) -> None:
        self._emit(event="error", message=message, exit_code=exit_code)
        print(f"studio: {message}", file=self.err, flush=True)
