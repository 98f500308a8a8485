"""Blocking calls (reading, writing, thumbnails) on a thread pool, answered on the GUI thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
Callbacks = tuple[Callback | None, Callback | None]


class Background(QObject):
    """Runs functions on worker threads; their results come back through a queued signal."""

    _sig_call_done = Signal(object, object)
    """A call finished: (its callbacks, its future)."""

    def __init__(self, parent: QObject | None = None, workers: int = 2) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="studio-io")
        self._sig_call_done.connect(self._deliver)
        self._closed = False

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callback | None = None,
        on_error: Callback | None = None,
    ) -> Future[Any]:
        """Run `fn(*args)` off the GUI thread; then `on_done(result)` or `on_error(exc)` on it."""
        future = self._pool.submit(fn, *args)
        future.add_done_callback(lambda f: self._emit_done((on_done, on_error), f))
        return future

    def _emit_done(self, callbacks: Callbacks, f: Future[Any]) -> None:
        if not self._closed:
            self._sig_call_done.emit(callbacks, f)

    def _deliver(self, callbacks: Callbacks, f: Future[Any]) -> None:
        on_done, on_error = callbacks
        if f.cancelled() or self._closed:
            return
        error = f.exception()
        if error is None:
            if on_done is not None:
                on_done(f.result())
        elif on_error is not None:
            on_error(error)
        else:
            log.error("Background call failed", exc_info=error)

    def shutdown(self) -> None:
        """Wait for running calls, drop queued ones; no callback runs afterwards."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
