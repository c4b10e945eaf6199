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
from collections.abc import Callable, Mapping
from typing import IO, Any

from ..decoders.columns import plan_columns
from ..errors import PackageError
from ..format.escape import escape_bytes, escape_text, is_safe_batch
from ..format.exports import ExportPlan, RecordCheck
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
from ..format.writer import EventWriter, MapWriters
from .colrows import column_header, compile_column_rows, compile_json_text_rows
from .streams import write_all


class _FormattingWriter(EventWriter):
    """`check`: the record sizes the layout fits (format/exports.py). A run
    of records it does not fit is never decoded: each record prints in hex,
    one line on `notes` says why (once per map), and `mismatched` counts them.
    Without a check, short records decode zero-padded and extra bytes are
    ignored."""

    def __init__(self, layout: Layout, stream: IO[bytes], check: RecordCheck | None = None,
                 notes: IO[str] | None = None, label: bytes = b""):
        self.layout = layout
        self.stream = stream
        self.pending: list[bytes] = []
        self._second = -1
        self._prefix = b""
        self.check = check
        self._exact = check.exact if check is not None else layout.size
        self._notes = notes
        self.label = label  # the map's name, leading each line when several buffers print together
        self.mismatched = 0

    def _time_prefix(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._prefix = time.strftime("%H:%M:%S", time.localtime(now)).encode()
        return self._prefix

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        if length == self._exact:  # the one comparison a run costs when records fit
            self._format(view, header, stride, count)
            return
        if self.check is not None and not self.check.accepts(length):
            self._mismatch(view, header, stride, count, length)
            return
        if length < self.layout.size:
            # A record shorter than the event struct (its trailing array cut
            # short by the program): decode it zero-padded.
            size = self.layout.size
            for k in range(count):
                start = k * stride + header
                padded = bytes(view[start : start + length]).ljust(size, b"\0")
                self._format(memoryview(padded), 0, size, 1)
            return
        self._format(view, header, stride, count)

    def _format(self, view: memoryview, header: int, stride: int, count: int) -> None:
        raise NotImplementedError

    def _mismatch(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        check = self.check
        assert check is not None
        if not self.mismatched:
            (self._notes or sys.stderr).write(f"ecli: {check.describe(length)}\n")
            (self._notes or sys.stderr).flush()
        self.mismatched += count
        self.pending.extend(hex_lines(view, header, stride, count, length, self._time_prefix(), self.label,
                                      bool(getattr(self, "_json", False)), check.map))

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
                 prefix: Callable[[], Any] | None = None, lost_stream: IO[str] | None = None,
                 check: RecordCheck | None = None, notes: IO[str] | None = None, label: bytes = b""):
        super().__init__(layout, stream, check, notes, label)
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

    def __init__(self, layout: Layout, stream: IO[bytes], header: bool = True, *, check: RecordCheck | None = None,
                 notes: IO[str] | None = None, label: bytes = b""):
        widths = [column_width(f) for f in layout.fields]
        super().__init__(layout, stream, compile_table_rows(layout, widths, escape=False),
                         safe=compile_table_rows(layout, widths, escape=True),
                         header=label + table_header(layout, widths) if header else b"",
                         check=check, notes=notes, label=label)
        self._prefix_of = self._labeled_time if label else self._time_prefix

    def _labeled_time(self) -> bytes:
        return self.label + self._time_prefix()


class ColumnTableWriter(RowsWriter):
    """The table of a struct with `@column` members (output/colrows.py): only
    those, extended ones with -e, the time first only with -T, the seconds
    since the start (`TIME(s)`) with --elapsed."""

    def __init__(self, layout: Layout, stream: IO[bytes], columns: dict[str, Any], header: bool = True, *,
                 extended: bool = False, timestamp: bool = False, check: RecordCheck | None = None,
                 notes: IO[str] | None = None, label: bytes = b"", containers: bool = False,
                 options: Mapping[str, Any] | None = None, elapsed: bool = False, detailed: bool = False):
        cols = plan_columns(layout, columns, extended or detailed, options, containers)
        prefix = timestamp or elapsed or bool(label)
        head = label + column_header(cols, 8 if timestamp else None, elapsed) if header and not detailed else b""
        super().__init__(layout, stream, compile_column_rows(layout, cols, escape=False, prefix=prefix,
                                                             vertical=detailed),
                         safe=compile_column_rows(layout, cols, escape=True, prefix=prefix, vertical=detailed),
                         header=head, check=check, notes=notes, label=label)
        self._start = time.monotonic() if elapsed else 0.0  # --elapsed counts from here: loaded, not yet read
        self._clock = timestamp
        if timestamp or elapsed:
            self._prefix_of = self._stamps if elapsed else self._labeled_time if label else self._time_prefix
        elif label:
            bare = label.rstrip(b" ")
            self._prefix_of = lambda: bare

    def _labeled_time(self) -> bytes:
        return self.label + self._time_prefix()

    def _stamps(self) -> bytes:
        """--elapsed: the seconds since the start as libbpf-tools' `%-8.3f`
        (execsnoop -t, statsnoop -t), after the wall-clock time if -T too.
        Read when a run of records is formatted, as libbpf-tools reads it
        when an event is handled: one wakeup interval late at most."""
        since = b"%-8.3f" % (time.monotonic() - self._start)
        return self.label + (self._time_prefix() + b" " + since if self._clock else since)


class JsonWriter(RowsWriter):
    """One JSON object per line, keyed by member name; always ASCII."""

    def __init__(self, layout: Layout, stream: IO[bytes], lost_stream: IO[str] | None = None, *,
                 check: RecordCheck | None = None, notes: IO[str] | None = None,
                 columns: dict[str, Any] | None = None, containers: bool = False):
        if columns or containers:  # with NAME_text keys of decoded columns (and the containers' keys)
            cols = plan_columns(layout, columns or {}, extended=True, containers=containers)
            # JSON names the host's cgroups "" (the table's "-" is for the eye)
            careful, fast = compile_json_text_rows(layout, [c._replace(params={}) if c.key else c for c in cols])
        else:
            careful, fast = compile_json_rows(layout), compile_json_fast_rows(layout)
        if fast is None:
            super().__init__(layout, stream, careful, json=True, lost_stream=lost_stream, check=check, notes=notes)
        else:
            super().__init__(layout, stream, fast[0], safe=careful, json=True, quotes=fast[1],
                             lost_stream=lost_stream, check=check, notes=notes)


class HexWriter(_FormattingWriter):
    """For records without an export type: the size and the bytes in hex."""

    def __init__(self, stream: IO[bytes], as_json: bool = False, label: bytes = b""):
        super().__init__(Layout("raw", 0, (), struct.Struct("")), stream, label=label)
        self.as_json = as_json

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        self.pending.extend(hex_lines(view, header, stride, count, length, self._time_prefix(), self.label,
                                      self.as_json))


def hex_lines(view: memoryview, header: int, stride: int, count: int, length: int, time_prefix: bytes,
              label: bytes, as_json: bool, map_name: str | None = None) -> list[bytes]:
    """Records printed as their size and bytes in hex: `TIME size=N HEX`, or
    {"size": N, "data": HEX} (with "map" for a record its struct did not fit)."""
    out = []
    for k in range(count):
        data = bytes(view[k * stride + header : k * stride + header + length]).hex()
        if as_json:
            doc: dict[str, Any] = {"size": length, "data": data}
            if map_name is not None:
                doc = {"map": map_name, **doc}
            out.append(json_text(doc).encode() + b"\n")
        else:
            out.append(b"%s%s size=%d %s\n" % (label, time_prefix, length, data.encode()))
    return out


def event_writer(layout: Layout | None, stream: IO[bytes], as_json: bool, header: bool = True, *,
                 check: RecordCheck | None = None, notes: IO[str] | None = None, label: bytes = b"",
                 columns: dict[str, Any] | None = None, extended: bool = False,
                 timestamp: bool = False, containers: bool = False,
                 options: Mapping[str, Any] | None = None, elapsed: bool = False,
                 detailed: bool = False) -> EventWriter:
    """The writer a generic package's events get: a table, JSON lines, or
    for records without an export type their bytes in hex. `header`: print
    the table's header line (only worth it when the program has an event
    buffer to fill the table). `check`: the record sizes `layout` fits.
    `columns`: the struct's @column specs (then -e `extended`, -T `timestamp`, --elapsed `elapsed`,
    --detailed `detailed`: every column, one per line).
    `containers`: add the container columns of the struct's cgroup id (--containers).
    `options`: the globals' values this run, for a column's `when`."""
    if layout is None:
        return HexWriter(stream, as_json, label)
    try:
        if as_json:
            return JsonWriter(layout, stream, check=check, notes=notes, columns=columns, containers=containers)
        if columns or containers:
            return ColumnTableWriter(layout, stream, columns or {}, header, extended=extended, timestamp=timestamp,
                                     check=check, notes=notes, label=label, containers=containers,
                                     options=options, elapsed=elapsed, detailed=detailed)
    except ValueError as e:  # a package's column that does not fit its struct (ecc refuses them)
        raise PackageError(f"struct {escape_text(layout.name)}: {escape_text(str(e))}") from None
    return TableWriter(layout, stream, header=header, check=check, notes=notes, label=label)


def plan_writer(plan: ExportPlan, stream: IO[bytes], as_json: bool, header: bool = True,
                notes: IO[str] | None = None, *, extended: bool = False, timestamp: bool = False,
                containers: bool = False,
                options: Mapping[str, Any] | None = None, elapsed: bool = False,
                detailed: bool = False) -> EventWriter:
    """A writer for every event buffer of a package, each with its own struct
    and size check. With several buffers a table's lines (and each buffer's
    header line) start with the map's name."""
    buffers = list(plan.buffers.values())
    if len(buffers) <= 1:
        b = buffers[0] if buffers else None
        return event_writer(b.layout if b else None, stream, as_json, header, check=b.check if b else None,
                            notes=notes, columns=b.columns if b else None, extended=extended, timestamp=timestamp,
                            containers=containers, options=options, elapsed=elapsed, detailed=detailed)
    width = max(len(b.map) for b in buffers) + 1
    writers = {b.map: event_writer(b.layout, stream, as_json, header, check=b.check, notes=notes,
                                   label=escape_bytes(b.map.encode()).ljust(width) if not as_json else b"",
                                   columns=b.columns, extended=extended, timestamp=timestamp, containers=containers,
                                   options=options, elapsed=elapsed, detailed=detailed)
               for b in buffers}
    first = next(iter(writers.values()))
    if isinstance(first, _FormattingWriter):  # every header line first, before any buffer's records
        for w in list(writers.values())[1:]:
            if isinstance(w, _FormattingWriter):
                first.pending.extend(w.pending)
                w.pending.clear()
    return MapWriters(writers, first)


def mismatch_summary(writer: EventWriter) -> list[str]:
    """One line per map whose records did not fit its struct: for the end of a run."""
    out = []
    for w in writer.writers() if isinstance(writer, MapWriters) else [writer]:
        if isinstance(w, _FormattingWriter) and w.mismatched and w.check is not None:
            c = w.check
            out.append(f"map '{escape_text(c.map)}': {w.mismatched} record{'s' * (w.mismatched != 1)} did not fit "
                       f"struct {escape_text(c.struct)} ({c.size} bytes) and were printed in hex")
    return out
