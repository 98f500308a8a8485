"""Measuring how responsive the GUI thread is: the longest gap between timer ticks.

A fast repeating timer runs on the GUI thread. Anything that blocks the event loop (work in a
slot, waiting for the GIL held by the job's thread) delays the next tick, so the longest gap
minus the interval is the longest time the window could not repaint or react to input.

On a machine busy with other programs the operating system also delays the thread, which no
application can prevent. Where Linux reports it (``/proc/.../schedstat``), the time the GUI
thread spent waiting for a CPU is measured too, and `longest_own_ms` leaves it out.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer


def _schedstat_path() -> Path | None:
    path = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
    return path if path.is_file() else None


def _runqueue_wait_s(path: Path | None) -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (0 where unknown)."""
    if path is None:
        return 0.0
    try:
        return int(path.read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class StallMonitor(QObject):
    """Create and start it on the GUI thread; `stop()` returns the longest stall in ms."""

    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._schedstat = _schedstat_path()
        self._last = 0.0
        self._last_wait = 0.0
        self.longest_ms = 0.0
        self.longest_own_ms = 0.0
        self.ticks = 0

    def start(self) -> None:
        self.longest_ms = self.longest_own_ms = 0.0
        self.ticks = 0
        self._last = time.perf_counter()
        self._last_wait = _runqueue_wait_s(self._schedstat)
        self._timer.start()

    def stop(self) -> float:
        """Stop and return the longest stall in milliseconds."""
        self._tick()
        self._timer.stop()
        return self.longest_ms

    def _tick(self) -> None:
        now = time.perf_counter()
        waited = _runqueue_wait_s(self._schedstat)
        stall = (now - self._last) * 1000.0 - self._interval_ms
        own = stall - (waited - self._last_wait) * 1000.0
        self.longest_ms = max(self.longest_ms, stall)
        self.longest_own_ms = max(self.longest_own_ms, own)
        self.ticks += 1
        self._last, self._last_wait = now, waited
