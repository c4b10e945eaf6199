"""A log that a flood cannot flood: at most `burst` lines per `window`
seconds, then one line saying how many were left out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

LOG_BURST = 10
LOG_WINDOW_S = 10.0


class RateLimitedLog:
    """At most `burst` lines per `window` seconds; then one line saying how
    many were left out. A flood of bad clients cannot flood the log."""

    def __init__(self, write: Callable[[str], None], burst: int = LOG_BURST, window: float = LOG_WINDOW_S):
        self._write = write
        self._burst = burst
        self._window = window
        self._lock = threading.Lock()
        self._start = -window
        self._count = 0
        self._dropped = 0

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._start >= self._window:
                dropped, self._dropped = self._dropped, 0
                self._start, self._count = now, 0
                if dropped:
                    self._emit(f"{dropped} more log lines left out in the last {self._window:g} s")
            self._count += 1
            if self._count > self._burst:
                self._dropped += 1
                return
            self._emit(line)

    def _emit(self, line: str) -> None:
        try:
            self._write(line)
        except (OSError, ValueError):  # a closed stderr must not stop the server
            pass
