"""Metrics read from BPF maps at scrape time, the way ebpf_exporter does:
the key's members become labels, an integer value is a counter (or gauge),
and an array of log2 slot counts is a histogram. The kernel aggregates, so an
event costs userspace nothing; a scrape costs one batched read of the map.

Entries whose labels come out the same (a label set that leaves key members
out, or a decoder that groups values) are added together. More than
`max_series` label sets: the rest are summed into the overflow series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .plan import MetricPlan

CACHE_MIN = 4096


@dataclass
class MapReading:
    """One scrape's view of a map metric."""

    values: dict[tuple[str, ...], Any]  # labels -> number, or slot counts
    overflow: Any  # None when nothing overflowed
    over_limit: int  # label sets that did not fit


class MapMetric:
    def __init__(self, plan: MetricPlan, read_entries: Callable[[], list[tuple[bytes, bytes]]], value_stride: int):
        assert plan.map is not None
        self.plan = plan
        self.source = plan.map
        self.label_names = tuple(label.name for label in plan.labels)
        self._texts = tuple(label.text for label in plan.labels)
        self._read_entries = read_entries
        self._stride = value_stride  # one CPU's slot in a per-CPU value
        self._cache: dict[bytes, tuple[str, ...]] = {}
        self._cache_max = max(CACHE_MIN, 2 * plan.config.max_series)
        self._kept: set[tuple[str, ...]] = set()  # label sets shown last time: they keep their place

    def labels_of(self, key: bytes) -> tuple[str, ...]:
        labels = self._cache.get(key)
        if labels is None:
            raw = self.source.key_values(key)
            labels = tuple(text(v) for text, v in zip(self._texts, raw, strict=True))
            if len(self._cache) >= self._cache_max:
                self._cache.clear()
            self._cache[key] = labels
        return labels

    def value_of(self, raw: bytes) -> Any:
        read = self.source.value
        if not self.source.percpu:
            return read(raw)
        stride = self._stride
        total: Any = None
        for i in range(0, len(raw) - stride + 1, stride):
            total = _add(total, read(raw[i : i + stride]))
        return total if total is not None else 0

    def read(self) -> MapReading:
        sums: dict[tuple[str, ...], Any] = {}
        for key, raw in self._read_entries():
            labels = self.labels_of(key)
            sums[labels] = _add(sums.get(labels), self.value_of(raw))
        limit = self.plan.config.max_series
        if len(sums) <= limit:
            self._kept = set(sums)
            return MapReading(sums, None, 0)
        kept = [labels for labels in sums if labels in self._kept][:limit]
        room = limit - len(kept)
        kept += [labels for labels in sums if labels not in self._kept][:room]
        keep = set(kept)
        overflow: Any = None
        for labels, value in sums.items():
            if labels not in keep:
                overflow = _add(overflow, value)
        self._kept = keep
        return MapReading({labels: sums[labels] for labels in kept}, overflow, len(sums) - limit)


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return list(b) if isinstance(b, list) else b
    if isinstance(b, list):
        if len(a) < len(b):
            a.extend([0] * (len(b) - len(a)))
        for i, v in enumerate(b):
            a[i] += v
        return a
    return a + b
