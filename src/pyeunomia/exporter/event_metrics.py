"""Metrics from events: count runs of ring-buffer records into series.

The per-event path is one generated function per metric (output.rows'
compile_rows in tuple mode): it unpacks only the members the metric reads and
appends one hashable tuple of raw values per record. The tuples of a run are
counted in C (collections' _count_elements), so Python code runs once per
distinct label set per run, not per event: decoding labels to text (cached),
finding the series, adding.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from sys import intern
from typing import IO, Any

from ..decoders.registry import Provisional
from ..format.escape import escape_text
from ..format.exports import RecordCheck
from ..format.layout import Layout
from ..format.rows import compile_rows
from ..format.writer import EventWriter
from .plan import MetricPlan
from .series import Cell, HistogramCell, SeriesStore


def _count_in_python(mapping: dict[Any, int], iterable: Iterable[Any]) -> None:
    get = mapping.get
    for item in iterable:
        mapping[item] = get(item, 0) + 1


# collections' C helper behind Counter.update: counts an iterable into a dict
_count_elements: Callable[[dict[Any, int], Iterable[Any]], None] = getattr(
    collections, "_count_elements", _count_in_python)

CACHE_MIN = 4096
YOUNG_MAX = 2048  # raw label sets seen once, kept until seen again or pushed out


@dataclass
class EventSeries:
    """A copy of one event metric's series, taken under the lock for a scrape."""

    metric: EventMetric
    items: list[tuple[tuple[str, ...], Any]]  # labels -> value, or (buckets, sum) for a histogram
    overflow: Any  # None when unused
    series: int
    refused: int
    expired: int


class EventMetric:
    """One metric fed by events: gathers a run, then merges it into its store."""

    def __init__(self, plan: MetricPlan, layout: Layout):
        self.plan = plan
        self.label_names = tuple(label.name for label in plan.labels)
        self._texts = tuple(label.text for label in plan.labels)
        kind = plan.kind
        self.bounds = tuple(plan.config.buckets.bounds) if kind == "histogram" and plan.config.buckets else ()
        n_buckets = len(self.bounds) + 1
        new_cell: Callable[[], Any] = (lambda: HistogramCell(n_buckets)) if kind == "histogram" else Cell
        self.store = SeriesStore(plan.config.max_series, plan.config.expire_after, new_cell)
        self._cache: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._young: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._cache_max = max(CACHE_MIN, plan.config.max_series)
        key = "(" + "".join(f"{label.cell}, " for label in plan.labels) + ")"
        self.counts_only = kind == "counter" and plan.value_field is None
        if self.counts_only:
            self._rows = compile_rows(layout, None, [label.cell for label in plan.labels]) if plan.labels else None
        else:
            self._rows = compile_rows(layout, None, [key, plan.value_cell])

    # -- without the lock: only this metric's own state ----------------------

    def gather(self, view: memoryview, header: int, stride: int, count: int) -> Any:
        """What one run adds: {raw labels: n} for counts, {(raw labels, value):
        n} for histograms, {raw labels: total} for valued counters, {raw
        labels: last value} for gauges."""
        if self._rows is None:
            return count
        out: list[Any] = []
        self._rows.write(view, header, stride, count, out.append, None)
        kind = self.plan.kind
        if self.counts_only or kind == "histogram":
            counts: dict[Any, int] = {}
            _count_elements(counts, out)
            return counts
        if kind == "gauge":
            return dict(out)
        totals: dict[Any, float] = {}
        get = totals.get
        for raw, value in out:
            totals[raw] = get(raw, 0) + value
        return totals

    def labels_of(self, raw: tuple[Any, ...]) -> tuple[str, ...]:
        """The label texts of raw values. Raw values seen in two runs are
        remembered; a value seen once (a stream of new file names, say) only
        passes through a small young generation, so the cache holds what
        recurs, not every label set ever made."""
        labels = self._cache.get(raw)
        if labels is not None:
            return labels
        labels = self._young.pop(raw, None)
        if labels is not None:
            if len(self._cache) >= self._cache_max:
                self._cache.clear()
            self._cache[raw] = labels
            return labels
        texts = [text(v) for text, v in zip(self._texts, raw, strict=True)]
        if any(isinstance(t, Provisional) for t in texts):  # not known yet: decoded again next time
            return tuple(str(t) for t in texts)
        # interned: series share equal texts (one "bash" for all of bash's files)
        labels = tuple(intern(t) for t in texts)
        if len(self._young) >= YOUNG_MAX:
            self._young.clear()
        self._young[raw] = labels
        return labels

    # -- under the program's lock ----------------------------------------------

    def snapshot(self, now: float) -> EventSeries:
        """Expire quiet series, then copy the rest."""
        store = self.store
        store.expire(now)
        if self.plan.kind == "histogram":
            items: list[Any] = [(k, (list(c.buckets), c.sum)) for k, c in store.cells.items()]
            over = (list(store.overflow.buckets), store.overflow.sum) if store.overflow_used else None
        else:
            items = [(k, c.value) for k, c in store.cells.items()]
            over = store.overflow.value if store.overflow_used else None
        return EventSeries(self, items, over, len(store), store.refused, store.expired)

    def merge(self, gathered: Any, now: float) -> None:
        cell = self.store.cell
        labels_of = self.labels_of
        if self._rows is None:
            cell((), now).value += gathered
            return
        kind = self.plan.kind
        if kind == "histogram":
            bounds = self.bounds
            for (raw, value), n in gathered.items():
                c = cell(labels_of(raw), now)
                c.buckets[bisect_left(bounds, value)] += n
                c.sum += value * n
        elif kind == "gauge":
            for raw, value in gathered.items():
                cell(labels_of(raw), now).value = value
        else:
            for raw, n in gathered.items():
                cell(labels_of(raw), now).value += n


class MetricsWriter(EventWriter):
    """The event loop's writer: feeds every event metric of one program and
    counts what was received and lost. Merges hold `lock`, which scrapes take
    too, so a scrape sees whole runs."""

    def __init__(self, layout: Layout | None, metrics: list[EventMetric], lock: threading.Lock,
                 clock: Callable[[], float] = time.monotonic, *, check: RecordCheck | None = None,
                 program: str = "", notes: IO[str] | None = None):
        self.layout = layout
        self.metrics = metrics
        self.lock = lock
        self.clock = clock
        self.received = 0
        self.lost = 0
        self.hold: Callable[[], None] | None = None  # called before each run: lets a scrape go first
        self.check = check  # records it does not fit feed no metric (format/exports.py)
        self._exact = check.exact if check is not None else -1
        self.mismatched = 0
        self._program = program
        self._notes = notes

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        if self.hold is not None:
            self.hold()
        if length != self._exact and self.check is not None and not self.check.accepts(length):
            if not self.mismatched:  # once: a wrong struct would say so on every run
                notes = self._notes or sys.stderr
                notes.write(f"eunomia-exporter: program {escape_text(self._program)}: "
                            f"{self.check.describe(length).replace('printed in hex', 'left out of the metrics')}\n")
                notes.flush()
            with self.lock:
                self.mismatched += count
            return
        layout = self.layout
        if layout is not None and self.metrics and length < layout.size:
            view, header, stride = _padded(view, header, stride, count, length, layout.size)
        gathered = [m.gather(view, header, stride, count) for m in self.metrics]
        now = self.clock()
        with self.lock:
            self.received += count
            for m, g in zip(self.metrics, gathered, strict=True):
                m.merge(g, now)

    def report_lost(self, count: int, where: str) -> None:
        with self.lock:
            self.lost += count


def _padded(view: memoryview, header: int, stride: int, count: int, length: int,
            size: int) -> tuple[memoryview, int, int]:
    """Records shorter than the event struct, copied zero-padded to full size."""
    out = bytearray(size * count)
    for k in range(count):
        start = k * stride + header
        out[k * size : k * size + length] = view[start : start + length]
    return memoryview(bytes(out)), 0, size
