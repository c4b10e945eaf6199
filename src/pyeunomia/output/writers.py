"""Writers for decoded event records: an aligned table, or JSON lines.

Readers hand over runs of same-sized records that sit in ring memory; a writer
formats a whole run with one compiled function, keeps the text until the batch
ends, and then writes it all (streams.write_all: a raw stdout can take part
of it) and flushes, so a pipe sees events within one poll interval.
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from ..format.escape import is_safe_batch
from ..format.layout import Layout
from ..format.rows import (
    CompiledRows,
    column_width,
    compile_json_fast_rows,
    compile_json_rows,
    compile_table_rows,
    json_text,
    table_header,
)
from ..format.writer import EventWriter
from .streams import write_all


class _FormattingWriter(EventWriter):
    def __init__(self, layout: Layout, stream: IO[bytes]):
        self.layout = layout
        self.stream = stream
        self.pending: list[bytes] = []
        self._second = -1
        self._prefix = b""

    def _time_prefix(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._prefix = time.strftime("%H:%M:%S", time.localtime(now)).encode()
        return self._prefix

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        if length < self.layout.size:
            # A record shorter than the event struct: decode it zero-padded.
            size = self.layout.size
            for k in range(count):
                start = k * stride + header
                padded = bytes(view[start : start + length]).ljust(size, b"\0")
                self._format(memoryview(padded), 0, size, 1)
            return
        self._format(view, header, stride, count)

    def _format(self, view: memoryview, header: int, stride: int, count: int) -> None:
        raise NotImplementedError

    def end_batch(self) -> None:
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()  # written at most once, even if writing fails part-way
            write_all(self.stream, data)
            self.stream.flush()


class RowsWriter(_FormattingWriter):
    """Formats each run with compiled rows (see rows.compile_rows).

    Table rows are bytes: `safe`, the variant that escapes kernel text, is used
    for a batch only when the fast output holds an unsafe byte. JSON rows are
    str and ASCII by construction; in JSON mode lost records are also reported
    as JSON on `lost_stream` when they happen.
    """

    def __init__(self, layout: Layout, stream: IO[bytes], fast: CompiledRows, *, safe: CompiledRows | None = None,
                 json: bool = False, quotes: int | None = None, header: bytes = b"",
                 prefix: Callable[[], Any] | None = None, lost_stream: IO[str] | None = None):
        super().__init__(layout, stream)
        self._fast = fast
        self._safe = safe
        self._json = json
        self._quotes = quotes
        self._prefix_of = prefix
        self._lost_stream = lost_stream if lost_stream is not None else sys.stderr
        if header:
            self.pending.append(header)

    def _format(self, view: memoryview, header: int, stride: int, count: int) -> None:
        lines: list[Any] = []
        prefix = self._prefix_of() if self._prefix_of else None
        self._fast.write(view, header, stride, count, lines.append, prefix)
        if self._json and self._safe is None:  # str rows, escaped as they are made
            self.pending.append("".join(lines).encode("ascii"))
            return
        data = b"".join(lines)
        if self._safe is not None and not is_safe_batch(data, count, self._quotes):
            lines.clear()
            self._safe.write(view, header, stride, count, lines.append, prefix)
            data = "".join(lines).encode("ascii") if self._json else b"".join(lines)
        self.pending.append(data)

    def report_lost(self, count: int, where: str) -> None:
        if self._json:
            self._lost_stream.write(json_text({"lost": count, "where": where, "time": time.time()}) + "\n")
            self._lost_stream.flush()


class TableWriter(RowsWriter):
    """One aligned line per event, the wall-clock time first."""

    def __init__(self, layout: Layout, stream: IO[bytes], header: bool = True):
        widths = [column_width(f) for f in layout.fields]
        super().__init__(layout, stream, compile_table_rows(layout, widths, escape=False),
                         safe=compile_table_rows(layout, widths, escape=True),
                         header=table_header(layout, widths) if header else b"")
        self._prefix_of = self._time_prefix


class JsonWriter(RowsWriter):
    """One JSON object per line, keyed by member name; always ASCII."""

    def __init__(self, layout: Layout, stream: IO[bytes], lost_stream: IO[str] | None = None):
        careful = compile_json_rows(layout)
        fast = compile_json_fast_rows(layout)
        if fast is None:
            super().__init__(layout, stream, careful, json=True, lost_stream=lost_stream)
        else:
            super().__init__(layout, stream, fast[0], safe=careful, json=True, quotes=fast[1],
                             lost_stream=lost_stream)


class HexWriter(_FormattingWriter):
    """For records without an export type: the size and the bytes in hex."""

    def __init__(self, stream: IO[bytes], as_json: bool = False):
        super().__init__(Layout("raw", 0, (), struct.Struct("")), stream)
        self.as_json = as_json

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        prefix = self._time_prefix()
        for k in range(count):
            data = bytes(view[k * stride + header : k * stride + header + length]).hex()
            if self.as_json:
                self.pending.append(json_text({"size": length, "data": data}).encode() + b"\n")
            else:
                self.pending.append(b"%s size=%d %s\n" % (prefix, length, data.encode()))


def event_writer(layout: Layout | None, stream: IO[bytes], as_json: bool, header: bool = True) -> EventWriter:
    """The writer a generic package's events get: a table, JSON lines, or
    for records without an export type their bytes in hex. `header`: print
    the table's header line (only worth it when the program has an event
    buffer to fill the table)."""
    if layout is None:
        return HexWriter(stream, as_json)
    if as_json:
        return JsonWriter(layout, stream)
    return TableWriter(layout, stream, header=header)
