"""The hot path's one contract: readers hand runs of records to an
EventWriter, and nothing else. Every writer sits behind it (table, JSON,
hex, the exporter's metrics, the Python API's dicts), so the runner never
knows how records are shown, and a new output mode never touches a reader.

Sampled maps have their own small contract, SampleWriter: the runner reads
and decodes a map when it is due and hands the entries over.

Pure: an interface, and the two writers that need no presentation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .layout import Layout


class EventWriter:
    """The interface readers write to."""

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        """`count` records of `length` bytes, each `header` bytes into a
        `stride`-byte slot of `view`."""
        raise NotImplementedError

    def end_batch(self) -> None:
        """Write out what the batch produced."""

    def report_lost(self, count: int, where: str) -> None:
        """Records lost at `where` (a kernel buffer, the reader)."""

    def close(self) -> None:
        self.end_batch()


class SampleWriter:
    """What receives a sampled map's entries, decoded (per-CPU values added
    up) and sorted by key, each time the map is read."""

    def write_sample(self, map_name: str, kind: str, unit: str, entries: list[tuple[Any, Any]]) -> None:
        """`kind`: the package's sample type (log2_hist, linear_hist, default_kv)."""
        raise NotImplementedError


class CallbackWriter(EventWriter):
    """Decodes each record into a dict and hands it to a Python callback."""

    def __init__(self, layout: Layout | None, callback: Any):
        self.layout = layout
        self.callback = callback

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        layout = self.layout
        for k in range(count):
            raw = bytes(view[k * stride + header : k * stride + header + length])
            if layout is None:
                self.callback({"size": length, "data": raw})
                continue
            if len(raw) < layout.size:
                raw = raw.ljust(layout.size, b"\0")
            self.callback(layout.decode(raw))


class _DiscardWriter(EventWriter):
    """The writer of a reader no loop reads from yet."""

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        pass


DISCARD: EventWriter = _DiscardWriter()


class SampleCallback(SampleWriter):
    """Each sampled entry as {"map", "key", "value"} to a Python callback."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]):
        self.callback = callback

    def write_sample(self, map_name: str, kind: str, unit: str, entries: list[tuple[Any, Any]]) -> None:
        for key, value in entries:
            self.callback({"map": map_name, "key": key, "value": value})
