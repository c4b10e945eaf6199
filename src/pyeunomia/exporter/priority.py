"""Scrapes first: while /metrics is being rendered, the event threads and the
garbage collector wait, so a scrape's CPU time is its wall time.

A scrape of 10,000 series costs about 5 ms of CPU (50 ms for the first one in
a format, which has prometheus_client write every line: see exposition.py), and
Python runs one thread at a time. Under a full-speed open producer the event
thread needs a fifth of the interpreter; sharing it with a scrape (5 ms GIL
slices) doubled scrape latency. So a scrape holds the gate, and an event
thread checks it between runs of records: while a scrape runs and its ring
buffer is less than half full it waits (without the GIL) and lets the records
pile up in the kernel's buffer, then reads them all once the scrape is done.
At half full it reads anyway: no event is lost for a scrape. Programs without
a ring buffer (perf buffers) never wait.

Automatic garbage collection is off while a scrape runs: its thousands of
short-lived objects would otherwise set off collections, the oldest of which
walk the whole heap (20 ms). They are freed by reference counting at the end.
"""

from __future__ import annotations

import gc
import mmap
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

HOLD_UNTIL = 0.5  # ring fill (fraction) at which an event thread stops waiting for a scrape
HOLD_MAX_S = 0.5  # and the longest it waits in any case
HOLD_STEP_S = 0.005  # how often a waiting thread looks at its ring again
GC_OFF_MAX_S = 5.0  # scrapes overlapping for longer than this no longer keep the collector off


class ScrapeGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scrapes = 0
        self._idle = threading.Event()
        self._idle.set()
        self._gc_off_since: float | None = None  # when a scrape turned automatic collection off
        self.held_s = 0.0  # total time event threads waited, for tests and benchmarks

    @contextmanager
    def scrape(self) -> Iterator[None]:
        """Hold the gate while rendering metrics (not while sending them)."""
        with self._lock:
            if self._scrapes == 0:
                self._idle.clear()
                if gc.isenabled():
                    gc.disable()
                    self._gc_off_since = time.monotonic()
            elif self._gc_off_since is not None and time.monotonic() - self._gc_off_since > GC_OFF_MAX_S:
                self._restore_gc()
            self._scrapes += 1
        try:
            yield
        finally:
            with self._lock:
                self._scrapes -= 1
                if self._scrapes == 0:
                    self._restore_gc()
                    self._idle.set()

    def _restore_gc(self) -> None:
        if self._gc_off_since is not None:
            gc.enable()
            self._gc_off_since = None

    @property
    def scraping(self) -> bool:
        return not self._idle.is_set()

    def hold(self, fill: Callable[[], float]) -> None:
        """For event threads, between runs: wait while a scrape runs, as long
        as `fill()` (the ring's fill, 0 to 1) stays under HOLD_UNTIL."""
        idle = self._idle
        if idle.is_set():
            return
        start = time.monotonic()
        deadline = start + HOLD_MAX_S
        while not idle.is_set() and fill() < HOLD_UNTIL and time.monotonic() < deadline:
            idle.wait(HOLD_STEP_S)
        self.held_s += time.monotonic() - start


class RingFill:
    """How full a program's ring buffers are, read from the positions the
    kernel shares (the consumer page, then the producer page): its own
    read-only mapping of those two pages, so the runner's reader is untouched."""

    def __init__(self, rings: list[tuple[int, int]]):  # (map fd, data size)
        page = os.sysconf("SC_PAGE_SIZE")
        self._maps: list[mmap.mmap] = []
        self._views: list[tuple[memoryview, memoryview, int]] = []
        self._bases: list[memoryview] = []
        try:
            for fd, size in rings:
                m = mmap.mmap(fd, 2 * page, mmap.MAP_SHARED, mmap.PROT_READ)
                self._maps.append(m)
                view = memoryview(m)
                self._bases.append(view)
                self._views.append((view[:8].cast("Q"), view[page : page + 8].cast("Q"), size))
        except BaseException:
            self.close()
            raise

    def __call__(self) -> float:
        """The fullest ring's fill, 0 to 1; 1 when there is no ring to look at."""
        if not self._views:
            return 1.0
        return max((int(prod[0]) - int(cons[0])) / size for cons, prod, size in self._views)

    def close(self) -> None:
        for cons, prod, _size in self._views:
            cons.release()
            prod.release()
        for view in self._bases:
            view.release()
        self._views, self._bases = [], []
        for m in self._maps:
            m.close()
        self._maps = []
