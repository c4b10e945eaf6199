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

from .exports import RecordCheck
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

    def for_map(self, name: str) -> EventWriter:
        """The writer for the records of map `name` (MapWriters has one per map)."""
        return self


class MapWriters(EventWriter):
    """One writer per event buffer (each with its own struct); the loop ends
    batches and closes through this one."""

    def __init__(self, by_map: dict[str, EventWriter], default: EventWriter):
        self.by_map = by_map
        self.default = default

    def for_map(self, name: str) -> EventWriter:
        return self.by_map.get(name, self.default)

    def writers(self) -> list[EventWriter]:
        return list(dict.fromkeys([*self.by_map.values(), self.default]))

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        self.default.write_run(view, header, stride, count, length)

    def end_batch(self) -> None:
        for w in self.writers():
            w.end_batch()

    def report_lost(self, count: int, where: str) -> None:
        self.default.report_lost(count, where)

    def close(self) -> None:
        for w in self.writers():
            w.close()


class SampleWriter:
    """What receives a sampled map's entries, decoded (per-CPU values added
    up) and sorted by key, each time the map is read."""

    def write_sample(self, map_name: str, kind: str, unit: str, entries: list[tuple[Any, Any]]) -> None:
        """`kind`: the package's sample type (log2_hist, linear_hist, default_kv)."""
        raise NotImplementedError


class CallbackWriter(EventWriter):
    """Decodes each record into a dict and hands it to a Python callback.
    A record its struct does not fit (`check`) is handed over undecoded, as
    {"map", "size", "data"}, and counted in `mismatched`."""

    def __init__(self, layout: Layout | None, callback: Any, check: RecordCheck | None = None):
        self.layout = layout
        self.callback = callback
        self.check = check
        self.mismatched = 0

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        layout = self.layout
        check = self.check
        misfit = check is not None and not check.accepts(length)
        if misfit:
            self.mismatched += count
        for k in range(count):
            raw = bytes(view[k * stride + header : k * stride + header + length])
            if layout is None or misfit:
                self.callback({"size": length, "data": raw} if not misfit or check is None else
                              {"map": check.map, "size": length, "data": raw})
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
