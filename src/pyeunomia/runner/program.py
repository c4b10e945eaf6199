"""The runner's Python API: a package running in the kernel.

    with Program(open_package("bootstrap.json"), {"min_duration_ns": 10**6}) as prog:
        for event in prog.events(duration=5):
            print(event["comm"], event["pid"])

The command line is a thin layer over this.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..format.exports import ExportPlan
from ..format.objspec import MAP_PERF_EVENT_ARRAY, MAP_RINGBUF
from ..format.package import Package
from ..format.runmeta import DEFAULT_PERF_BUFFER_TIME_MS
from ..format.writer import DISCARD, CallbackWriter, EventWriter, MapWriters, SampleCallback, SampleWriter
from .kernelbtf import BtfFile
from .loader import LoadedObject, MapInfo
from .loop import EventLoop, Reader, Sampler

if TYPE_CHECKING:
    from .promise import Promise
from .lostmap import LostCounter, is_lost_counter
from .ringbuf import RingBufferReader


def ring_exports(plan: ExportPlan, rings: list[str]) -> ExportPlan:
    """`plan` for perf arrays that were loaded as ring buffers (runner/perf2ring.py)."""
    buffers = {name: b._replace(check=b.check._replace(exact=b.check.size)) if name in rings and b.check else b
               for name, b in plan.buffers.items()}
    return plan._replace(buffers=buffers)


class RunStats(NamedTuple):
    received: int
    lost: int


class Program:
    """A loaded, attached package. Close it (or use `with`) to detach.

    `btf`: a BTF file (a path, or a kernelbtf.BtfFile) that CO-RE
    relocations resolve against instead of /sys/kernel/btf/vmlinux, as
    `ecli run --btf PATH` does. `only`, `skip`: program names to load
    exactly, or to leave out (ecli's --only and --skip). `perf_to_ring`:
    load perf arrays used only by bpf_perf_event_output as ring buffers
    where the kernel has them (runner/perf2ring.py; ecli's --perf-array
    turns it off)."""

    def __init__(self, package: Package, values: dict[str, Any] | None = None, *,
                 verbose: bool = False, ifname: str | None = None, poll_ms: int | None = None,
                 perf_pages: int | None = None, map_sizes: dict[str, int] | None = None,
                 autoload: list[str] | None = None, frequency: int | None = None,
                 btf: str | os.PathLike[str] | BtfFile | None = None,
                 only: list[str] | None = None, skip: list[str] | None = None, perf_to_ring: bool = True):
        self.package = package
        self.layout = package.export_layout()
        self.exports = package.exports  # which struct each event buffer carries
        self.poll_ms = poll_ms if poll_ms is not None else min(package.meta.poll_timeout_ms, 100)
        self.perf_pages = perf_pages  # None: sized by perfbuf.ring_pages
        self._loop: EventLoop | None = None
        self._promise: Promise | None = None
        self._readers: list[tuple[Reader, list[int]]] = []
        # Readers exist before the programs attach: a perf array drops records
        # while no perf event is in it, and no event should be missed.
        self.loaded = LoadedObject(package, values, verbose=verbose, attach=False, map_sizes=map_sizes,
                                   autoload=autoload, btf=btf, only=only, skip=skip,
                                   perf_ring_bytes=self._perf_ring_bytes() if perf_to_ring else None)
        if self.loaded.rings_from_perf:  # their records come without a perf sample's padding
            self.exports = ring_exports(self.exports, self.loaded.rings_from_perf)
        try:
            self._readers = self._open_readers()
            self.loaded.attach(ifname, frequency=frequency)
        except BaseException:
            self.close()
            raise

    def _perf_ring_bytes(self) -> int | None:
        """The size of the ring buffer that replaces a perf array (runner/perf2ring.py):
        what its per-CPU rings would have held together. None without a perf array."""
        if not any(m.type == MAP_PERF_EVENT_ARRAY for m in self.package.spec.maps):
            return None
        from .perfbuf import _pow2_ceil, ring_pages

        page, cpus = os.sysconf("SC_PAGE_SIZE"), os.cpu_count() or 1
        pages = self.perf_pages or ring_pages(self.package.meta.perf_buffer_pages)
        return _pow2_ceil(pages * page * cpus)

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.loaded.values)

    def buffer_maps(self) -> list[MapInfo]:
        """The event buffers read: a package with multiple export types names them (upstream reads no other)."""
        return [m for m in self.loaded.maps() if m.type in (MAP_RINGBUF, MAP_PERF_EVENT_ARRAY)
                and m.name in self.exports.buffers]

    def sampled_maps(self) -> list[tuple[MapInfo, Any]]:
        by_name = {m.name: m for m in self.loaded.maps()}
        return [(by_name[m.name], m.sample) for m in self.package.meta.maps if m.sample and m.name in by_name]

    def _open_readers(self) -> list[tuple[Reader, list[int]]]:
        readers: list[tuple[Reader, list[int]]] = []
        try:
            for m in self.buffer_maps():
                if m.type == MAP_RINGBUF:
                    rb = RingBufferReader(m.name, m.fd, m.max_entries, DISCARD)
                    rb.watch_full = m.name in self.loaded.rings_from_perf
                    readers.append((rb, [m.fd]))
                else:
                    from .perfbuf import PerfBufferReader, ring_pages  # most packages have none: load on demand

                    at_least = self.package.meta.perf_buffer_pages
                    if self.perf_pages:
                        pb = PerfBufferReader(m.name, m.fd, self.perf_pages, DISCARD)
                    else:
                        pb = PerfBufferReader(m.name, m.fd, ring_pages(at_least), DISCARD, at_least=at_least)
                    readers.append((pb, pb.fds))
            for m in self.loaded.maps():
                if is_lost_counter(m):
                    readers.append((LostCounter(m, DISCARD), []))
        except BaseException:
            for r, _ in readers:
                r.close()
            raise
        return readers

    def open_loop(self, writer: EventWriter, samples: SampleWriter | None = None,
                  wakeup_fd: int | None = None, extra: Sequence[Sampler] = ()) -> EventLoop:
        """A poll loop over every event buffer, writing to `writer`, and
        (with `samples`) samplers for every sampled map; `extra` run when
        due too (runner/mapdump.py's periodic dump)."""
        if self._loop is not None:
            self._loop.close()
        for reader, _fds in self._readers:
            reader.writer = writer.for_map(reader.name)
        spec = self.package.spec
        samplers: list[Sampler] = list(extra)
        for info, sample in self.sampled_maps():
            if samples is None:
                break
            from .sampler import MapSampler  # most packages have none: load on demand

            mspec = spec.map(info.name)
            samplers.append(MapSampler(info, sample, spec.btf, mspec.key_type_id if mspec else 0,
                                       mspec.value_type_id if mspec else 0, samples))
        linger = self._linger_ms()
        if linger and self._promise is None:
            from .promise import Promise  # only programs that hold back wakeups read one

            self._promise = Promise.open(self.loaded)
        self._loop = EventLoop(self._readers, samplers, writer, self.poll_ms, wakeup_fd, linger, self._promise)
        return self._loop

    def _linger_ms(self) -> int | None:
        """A program with a `wakeup_interval_ns` global (opensnoop's) wakes the
        reader at most once per interval: the loop must look again that soon
        after reading (see EventLoop). Perf arrays wake it only every half
        ring: while records flow, read them every `perf_buffer_time_ms`."""
        found = []
        interval_ns = self.values.get("wakeup_interval_ns")
        if isinstance(interval_ns, int) and not isinstance(interval_ns, bool) and interval_ns > 0:
            found.append(max(1, interval_ns // 1_000_000))
        if any(m.type == MAP_PERF_EVENT_ARRAY or m.name in self.loaded.rings_from_perf for m in self.buffer_maps()):
            found.append(self.package.meta.run.perf_buffer_time_ms or DEFAULT_PERF_BUFFER_TIME_MS)
        return min(found) if found else None

    def rings_found_full(self) -> dict[str, int]:
        """Perf arrays made ring buffers that were found full (records may have
        been dropped, uncounted: runner/ringbuf.py) -> how many reads found them so."""
        return {r.name: r.full_seen for r, _fds in self._readers if isinstance(r, RingBufferReader) and r.full_seen}

    def run(self, writer: EventWriter, samples: SampleWriter | None = None, *, duration: float | None = None,
            should_stop: Callable[[], bool] = lambda: False, wakeup_fd: int | None = None,
            extra: Sequence[Sampler] = ()) -> RunStats:
        """Hand events to `writer` (and sampled maps to `samples`) until
        stopped; output.writers has the writers ecli prints with."""
        loop = self.open_loop(writer, samples, wakeup_fd=wakeup_fd, extra=extra)
        try:
            loop.run(duration, should_stop)
        finally:
            writer.close()
        return self.stats()

    def events(self, duration: float | None = None, include_samples: bool = False) -> Iterator[dict[str, Any]]:
        """Decoded events as dicts, as they arrive; sampled map entries too
        when `include_samples` (as {"map", "key", "value"})."""
        pending: deque[dict[str, Any]] = deque()
        writers: dict[str, EventWriter] = {b.map: CallbackWriter(b.layout, pending.append, b.check)
                                           for b in self.exports.buffers.values()}
        loop = self.open_loop(MapWriters(writers, CallbackWriter(self.layout, pending.append)),
                              SampleCallback(pending.append) if include_samples else None)
        deadline = time.monotonic() + duration if duration is not None else None
        step = self.poll_ms / 1000.0
        while deadline is None or time.monotonic() < deadline:
            left = step if deadline is None else min(step, max(0.0, deadline - time.monotonic()))
            loop.run(left, should_stop=lambda: bool(pending))  # back as soon as a read found something
            while pending:
                yield pending.popleft()

    def stats(self) -> RunStats:
        for reader, _fds in self._readers:
            if isinstance(reader, LostCounter):
                reader.read(force=True)
        lost = sum(reader.lost for reader, _fds in self._readers)
        return RunStats(self._loop.received if self._loop else 0, lost)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if self._promise is not None:
            self._promise.close()
            self._promise = None
        readers, self._readers = self._readers, []
        for reader, _fds in readers:
            reader.close()
        if hasattr(self, "loaded"):
            self.loaded.close()

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
