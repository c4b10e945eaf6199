"""Stack trace events: upstream's text, JSON lines, and folded counts.

The text is bpf-loader-rs's (export_event/event_handlers/buffer.rs), so
scripts written for upstream's ecli read it unchanged:

    COMM: busy (pid=4242) @ CPU 1
    Kernel:
      0 [<ffffffff8f8a1b2c>] asm_sysvec_apic_timer_interrupt+0x1a
    Userspace:
      0 [<000055d0c7d2a139>] spin+0x10 (/tmp/busy)

(upstream prints a source file and line where DWARF has them; we print the
mapped file of a user frame). A stack the program could not take prints
"No Kernel Stack" / "No Userspace Stack"; an event with neither is skipped,
as upstream does. A JSON line also carries the event's members that the
stack_trace mapping does not name, raw (offcputime's off-CPU time), and with
--containers the container keys of the event's cgroup id member, as any
event's (`container_runtime`, `container`, `pod`, `k8s_namespace`; "" for
the host); the text adds `in RUNTIME container NAME` to a container's head.

Folded stacks are what flamegraph.pl and speedscope read: one line per
distinct stack, `comm;user root;...;user leaf;kernel root_[k];...;kernel
leaf_[k] count`, sorted, kernel frames marked `_[k]` as bcc's profile -f
marks them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import IO

from ..decoders import DECODERS
from ..decoders.columns import container_columns
from ..format.escape import escape_bytes, escape_text
from ..format.rows import json_text
from ..format.stacks import FIELDS, Frame, Sample, SampleReader, Symbolizer
from ..format.writer import EventWriter
from .streams import write_all

UNKNOWN = "[unknown]"
KERNEL_MARK = "_[k]"
TEXT_CACHE = 1 << 14  # stacks whose text is kept


def frame_name(frame: Frame) -> str:
    """A frame's name in folded stacks: its symbol, else its file's name in
    brackets, else [unknown]; never a ';' or a control character."""
    if frame.symbol is not None:
        name = frame.symbol
    elif frame.module:
        name = "[" + frame.module.rsplit("/", 1)[-1] + "]"
    else:
        name = UNKNOWN
    return escape_text(name).replace(";", ":").replace(" ", "_") if not name.isidentifier() else name


class FoldedProfile:
    """Counts of distinct stacks, keyed by the frames' names (two addresses
    in one function fold together). The names of a repeated stack are
    computed once: the symbolizer hands back the same frames tuple."""

    def __init__(self, delimited: bool = False) -> None:
        self.delimited = delimited  # libbpf-tools' profile -d: a "-" frame between the user and kernel frames
        self.counts: Counter[tuple[str, ...]] = Counter()
        self._names: dict[tuple[int, int, bytes], tuple[str, ...]] = {}
        self._keep: list[object] = []  # the frame tuples whose ids key _names, kept alive

    def add(self, comm: bytes | None, kframes: tuple[Frame, ...] | None, uframes: tuple[Frame, ...] | None,
            weight: int = 1) -> None:
        key = (id(kframes), id(uframes), comm or b"")
        names = self._names.get(key)
        if names is None:
            if len(self._names) >= 1 << 15:
                self._names.clear()
                self._keep.clear()
            self._keep.append((kframes, uframes))
            head = escape_text((comm or b"?").decode("utf-8", "replace")).replace(";", ":").replace(" ", "_")
            names = (head or "?",
                     *(frame_name(f) for f in reversed(uframes or ())),
                     *(("-",) if self.delimited and uframes and kframes else ()),
                     *(frame_name(f) + KERNEL_MARK for f in reversed(kframes or ())))
            self._names[key] = names
        self.counts[names] += weight

    def lines(self) -> list[str]:
        return [f"{';'.join(stack)} {count}\n" for stack, count in sorted(self.counts.items())]


def _frame_text(i: int, frame: Frame) -> str:
    text = f"  {i} [<{frame.address:016x}>]"
    if frame.symbol is not None:
        text += f" {escape_text(frame.symbol)}+0x{frame.offset:x}"
    if frame.module:
        text += f" ({escape_text(frame.module)})"
    return text + "\n"


def _raw_frames(addresses: tuple[int, ...]) -> tuple[Frame, ...]:
    return tuple(Frame(a, None, 0, "") for a in addresses)


class StackWriter(EventWriter):
    """Turns stack trace records into text or JSON lines on `stream`
    (None: print nothing), and counts them into `profile` if given."""

    def __init__(self, reader: SampleReader, symbolizer: Symbolizer, stream: IO[bytes] | None,
                 as_json: bool = False, profile: FoldedProfile | None = None, containers: bool = False):
        self.reader = reader
        self.symbolizer = symbolizer
        self.symbols = reader.spec.with_symbols
        self.stream = stream
        self.as_json = as_json
        self.profile = profile
        self.pending: list[str] = []
        self.samples = 0
        self._texts: dict[tuple[int, str], tuple[tuple[Frame, ...], str]] = {}
        # JSON lines also carry the event's members the stack_trace mapping does not name (offcputime's
        # off-CPU time, a thread id), raw, as ecli -j prints any event's; a name the line already has is left out
        mapped = {reader.spec.field_map.get(key, key) for key in FIELDS}
        taken = {"time", "comm", "pid", "cpu_id", "kstack", "ustack"}
        self._extra = [f.name for f in reader.layout.fields if f.name not in mapped and f.name not in taken] \
            if as_json else []
        # --containers: (JSON key, decode) of the cgroup id member; ValueError when the struct has none
        self._containers: list[tuple[str, Callable[[int], str]]] = []
        self._cgroup = ""
        if containers:
            cols = container_columns(reader.layout, {})
            self._cgroup = cols[0].member
            self._containers = [(c.key, DECODERS[c.decoder].make({})) for c in cols if c.decoder]

    def write_run(self, view: memoryview, header: int, stride: int, count: int, length: int) -> None:
        size = self.reader.layout.size
        for k in range(count):
            start = k * stride + header
            if length < size:
                record = bytes(view[start : start + length]).ljust(size, b"\0")
                self._one(self.reader.read(record, 0), record, 0)
            else:
                self._one(self.reader.read(view, start), view, start)

    def _frames(self, sample: Sample) -> tuple[tuple[Frame, ...] | None, tuple[Frame, ...] | None]:
        kstack, ustack = sample.kstack, sample.ustack
        if not self.symbols:
            return (_raw_frames(kstack) if kstack else None), (_raw_frames(ustack) if ustack else None)
        kframes = self.symbolizer.kernel(kstack) if kstack else None
        uframes = self.symbolizer.user(sample.pid or 0, ustack, sample.comm) if ustack and sample.pid else \
            (_raw_frames(ustack) if ustack else None)
        return kframes, uframes

    def _one(self, sample: Sample, record: bytes | memoryview = b"", start: int = 0) -> None:
        if not sample.kstack and not sample.ustack:
            return  # upstream: "No stack info available. skipping"
        self.samples += 1
        kframes, uframes = self._frames(sample)
        if self.profile is not None:
            self.profile.add(sample.comm, kframes, uframes, 1 if sample.weight is None else sample.weight)
        if self.stream is None:
            return
        if self.as_json:
            comm = (sample.comm or b"").decode("utf-8", "replace")
            head = json_text({"time": round(time.time(), 6), "comm": comm, "pid": sample.pid, "cpu_id": sample.cpu_id,
                              **self._members(record, start), **self._container(record, start)})
            self.pending.append(f'{head[:-1]},"kstack":{self._stack_json(kframes)},'
                                f'"ustack":{self._stack_json(uframes)}}}\n')
            return
        comm = escape_bytes(sample.comm or b"").decode("utf-8", "replace")  # a regex pass when it is plain ASCII
        where = self._container(record, start)
        inside = f" in {where['container_runtime']} container {escape_text(where['container'])}" \
            if where.get("container") else ""
        head = f"COMM: {comm} (pid={_show(sample.pid)}) @ CPU {_show(sample.cpu_id)}{inside}\n"
        self.pending.append(head + self._stack_text("Kernel", kframes) + self._stack_text("Userspace", uframes) + "\n")

    def _members(self, record: bytes | memoryview, start: int) -> dict[str, object]:
        if not self._extra or not record:
            return {}
        size = self.reader.layout.size
        values = self.reader.layout.decode(bytes(record[start : start + size]))
        return {name: values[name] for name in self._extra}

    def _container(self, record: bytes | memoryview, start: int) -> dict[str, str]:
        """The container keys of the record's cgroup id (--containers): dict lookups once the id is known."""
        if not self._containers or not record:
            return {}
        size = self.reader.layout.size
        cgroup_id = self.reader.layout.decode(bytes(record[start : start + size]))[self._cgroup]
        return {key: str(decode(cgroup_id)) for key, decode in self._containers}

    def _stack_text(self, title: str, frames: tuple[Frame, ...] | None) -> str:
        if not frames:
            return f"No {title} Stack\n"
        return self._cached(frames, title, lambda: title + ":\n" + "".join(
            _frame_text(i, f) for i, f in enumerate(frames)))

    def _stack_json(self, frames: tuple[Frame, ...] | None) -> str:
        return self._cached(frames, "json", lambda: json_text([_frame_json(f) for f in frames or ()])) \
            if frames else "[]"

    def _cached(self, frames: tuple[Frame, ...], kind: str, make: Callable[[], str]) -> str:
        """A stack's text, made once per frames tuple (a repeated stack is
        the same tuple): escaping 20 frames' names costs about 150 µs, this
        lookup 0.1 µs; a repeated sample of 10+10 frames costs 12-14 µs in all
        as text, 25-33 µs as JSON, 8-15 µs folded only (measured here,
        loaded). The tuple is kept with its text, so its id stays its own."""
        key = (id(frames), kind)
        found = self._texts.get(key)
        if found is not None and found[0] is frames:
            return found[1]
        if len(self._texts) >= TEXT_CACHE:
            self._texts.clear()
        text = make()
        self._texts[key] = (frames, text)
        return text

    def end_batch(self) -> None:
        if self.pending and self.stream is not None:
            data = "".join(self.pending).encode("utf-8", "surrogateescape")
            self.pending.clear()  # written at most once, even if writing fails part-way
            write_all(self.stream, data)
            self.stream.flush()
        self.pending.clear()


def _show(value: int | None) -> str:
    return "?" if value is None else str(value)


def _frame_json(frame: Frame) -> dict[str, object]:
    out: dict[str, object] = {"address": frame.address, "symbol": frame.symbol, "offset": frame.offset}
    if frame.module:
        out["module"] = frame.module
    return out
