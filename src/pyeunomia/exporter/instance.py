"""One configured program running in the kernel, its event loop on a thread
of its own, and a consistent snapshot of its metrics for a scrape.

The event thread and the scrape thread share `lock`: the thread holds it while
it merges a run into the series, a scrape while it copies the series and
reads the maps (so a map's fd cannot be closed under a read by /stop).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..format.objspec import MAP_RINGBUF
from ..format.writer import DISCARD, MapWriters
from ..runner.kernelbtf import BtfFile
from ..runner.maps import percpu_value_size, read_entries
from ..runner.program import Program
from .event_metrics import EventMetric, EventSeries, MetricsWriter
from .map_metrics import MapMetric, MapReading
from .plan import ProgramPlan
from .priority import RingFill, ScrapeGate

STOP_TIMEOUT_S = 10.0


@dataclass
class Snapshot:
    id: int
    name: str
    up: bool
    received: int
    lost: int
    run_stats: list[tuple[str, int, int]] = field(default_factory=list)  # (bpf program, ns, runs)
    events: list[EventSeries] = field(default_factory=list)
    maps: list[tuple[MapMetric, MapReading]] = field(default_factory=list)


class ProgramInstance:
    def __init__(self, id: int, plan: ProgramPlan, verbose: bool = False, gate: ScrapeGate | None = None,
                 btf: BtfFile | None = None):
        self.id = id
        self.plan = plan
        self.name = plan.name
        self.lock = threading.Lock()
        self.started_at = time.time()
        self.error: str | None = None
        self.closed = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        layout = plan.layout
        self.event_metrics = [EventMetric(m, layout) for m in plan.metrics if m.map is None and layout is not None]
        self.program = Program(plan.package, plan.values, verbose=verbose, btf=btf)
        buffer = plan.buffer
        if buffer is not None:  # a perf array loaded as a ring buffer takes records of another size
            buffer = self.program.exports.buffers.get(buffer.map, buffer)
        self.writer = MetricsWriter(layout, self.event_metrics, self.lock, check=buffer.check if buffer else None,
                                    program=self.name)
        self._fill: RingFill | None = None
        try:
            self.map_metrics = [self._map_metric(m) for m in plan.metrics if m.map is not None]
            if gate is not None and self.event_metrics:
                rings = [(m.fd, m.max_entries) for m in self.program.loaded.maps() if m.type == MAP_RINGBUF]
                fill = self._fill = RingFill(rings)
                self.writer.hold = lambda: gate.hold(fill)
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except BaseException:
            if self._fill is not None:
                self._fill.close()
            self.program.close()
            raise

    def _map_metric(self, plan: Any) -> MapMetric:
        source = plan.map
        if source.section_entries is not None:  # a global: its section's map (libbpf: `runqlen.bss`)
            section = source.map_name
            info = next(m for m in self.program.loaded.maps()
                        if m.name == section or (m.name.endswith(section) and len(m.name) - len(section) <= 8))

            def globals_() -> list[tuple[bytes, bytes]]:
                found = read_entries(info.fd, info.type, info.key_size, info.value_size, 1)
                return source.section_entries(found[0][1]) if found else []
            return MapMetric(plan, globals_, 8)
        info = self.program.loaded.map(source.map_name)

        def entries() -> list[tuple[bytes, bytes]]:
            return read_entries(info.fd, info.type, info.key_size, info.value_size, info.max_entries)
        return MapMetric(plan, entries, percpu_value_size(info.value_size))

    @property
    def attached(self) -> int:
        return sum(1 for p in self.program.loaded.programs if self.program.loaded.program_loaded(p.name))

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"events-{self.id}-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            # metrics read the records of one buffer (plan.buffer); any other buffer's are not theirs
            writer = MapWriters({buffer.map: self.writer}, DISCARD) if (buffer := self.plan.buffer) else self.writer
            loop = self.program.open_loop(writer, wakeup_fd=self._wake_r)  # map metrics are read at scrapes
            loop.run(None, lambda: self._stopping)
        except Exception as e:  # noqa: BLE001 - reported on the landing page and as program_up 0
            self.error = f"{type(e).__name__}: {e}"
            import sys

            sys.stderr.write(f"eunomia-exporter: program {self.id} ({self.name}) stopped reading events: "
                             f"{self.error}\n")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.error is None

    def stop(self) -> None:
        """Stop the event thread, then detach and unload. Idempotent."""
        self._stopping = True
        if self._thread is not None:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
            self._thread.join(STOP_TIMEOUT_S)
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if self._fill is not None:
                self._fill.close()
            self.program.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def snapshot(self, now: float | None = None, run_stats: bool = False) -> Snapshot:
        now = time.monotonic() if now is None else now
        with self.lock:
            snap = Snapshot(self.id, self.name, self.running and not self.closed, self.writer.received,
                            self.writer.lost)
            if self.closed:
                return snap
            snap.events = [m.snapshot(now) for m in self.event_metrics]
            snap.maps = [(m, m.read()) for m in self.map_metrics]
            if run_stats:
                snap.run_stats = self._run_stats()
        return snap

    def _run_stats(self) -> list[tuple[str, int, int]]:
        return self.program.loaded.run_stats()
