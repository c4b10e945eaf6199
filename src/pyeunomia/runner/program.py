"""The runner's Python API: a package running in the kernel.

    with Program(open_package("bootstrap.json"), {"min_duration_ns": 10**6}) as prog:
        for event in prog.events(duration=5):
            print(event["comm"], event["pid"])

The command line is a thin layer over this.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from ..objspec import MAP_PERF_EVENT_ARRAY, MAP_RINGBUF
from ..output.events import CallbackWriter, EventWriter, HexWriter, JsonWriter, TableWriter
from ..package import Package
from .loader import LoadedObject, MapInfo
from .loop import EventLoop, Reader
from .perfbuf import PerfBufferReader
from .ringbuf import RingBufferReader
from .sampler import MapSampler


@dataclass
class RunStats:
    received: int
    lost: int


class Program:
    """A loaded, attached package. Close it (or use `with`) to detach."""

    def __init__(self, package: Package, values: dict[str, Any] | None = None, *,
                 verbose: bool = False, ifname: str | None = None, poll_ms: int | None = None):
        self.package = package
        self.layout = package.export_layout()
        self.poll_ms = poll_ms if poll_ms is not None else min(package.meta.poll_timeout_ms, 100)
        self.loaded = LoadedObject(package, values, verbose=verbose, ifname=ifname)
        self._loop: EventLoop | None = None

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.loaded.values)

    def buffer_maps(self) -> list[MapInfo]:
        return [m for m in self.loaded.maps() if m.type in (MAP_RINGBUF, MAP_PERF_EVENT_ARRAY)]

    def sampled_maps(self) -> list[tuple[MapInfo, Any]]:
        by_name = {m.name: m for m in self.loaded.maps()}
        return [(by_name[m.name], m.sample) for m in self.package.meta.maps if m.sample and m.name in by_name]

    def writer_for(self, stream: IO[bytes], as_json: bool) -> EventWriter:
        if self.layout is None:
            return HexWriter(stream, as_json)
        return JsonWriter(self.layout, stream) if as_json else TableWriter(self.layout, stream)

    def open_loop(self, writer: EventWriter, stream: IO[bytes] | None = None, as_json: bool = False,
                  sample_callback: Callable[[dict[str, Any]], None] | None = None,
                  wakeup_fd: int | None = None) -> EventLoop:
        """Readers for every event buffer and samplers for every sampled map."""
        if self._loop is not None:
            self._loop.close()
        readers: list[tuple[Reader, list[int]]] = []
        try:
            for m in self.buffer_maps():
                if m.type == MAP_RINGBUF:
                    rb = RingBufferReader(m.name, m.fd, m.max_entries, writer)
                    readers.append((rb, [m.fd]))
                else:
                    pb = PerfBufferReader(m.name, m.fd, self.package.meta.perf_buffer_pages, writer)
                    readers.append((pb, pb.fds))
        except BaseException:
            for r, _ in readers:
                r.close()
            raise
        spec = self.package.spec
        samplers = []
        for info, sample in self.sampled_maps():
            mspec = spec.map(info.name)
            samplers.append(MapSampler(info, sample, spec.btf, mspec.key_type_id if mspec else 0,
                                       mspec.value_type_id if mspec else 0, stream or sys.stdout.buffer,
                                       as_json, sample_callback))
        self._loop = EventLoop(readers, samplers, writer, self.poll_ms, wakeup_fd)
        return self._loop

    def run(self, stream: IO[bytes] | None = None, *, as_json: bool = False, duration: float | None = None,
            should_stop: Callable[[], bool] = lambda: False, wakeup_fd: int | None = None,
            writer: EventWriter | None = None) -> RunStats:
        """Print events (and sampled maps) to `stream` until stopped."""
        out = stream or sys.stdout.buffer
        writer = writer or self.writer_for(out, as_json)
        loop = self.open_loop(writer, out, as_json, wakeup_fd=wakeup_fd)
        try:
            loop.run(duration, should_stop)
        finally:
            writer.close()
        return RunStats(loop.received, loop.lost())

    def events(self, duration: float | None = None, include_samples: bool = False) -> Iterator[dict[str, Any]]:
        """Decoded events as dicts, as they arrive; sampled map entries too
        when `include_samples` (as {"map", "key", "value"})."""
        pending: list[dict[str, Any]] = []
        loop = self.open_loop(CallbackWriter(self.layout, pending.append),
                              sample_callback=pending.append if include_samples else None)
        import time
        deadline = time.monotonic() + duration if duration is not None else None
        while deadline is None or time.monotonic() < deadline:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            loop.run(min(self.poll_ms / 1000.0, remaining) if remaining is not None else self.poll_ms / 1000.0)
            while pending:
                yield pending.pop(0)

    def stats(self) -> RunStats:
        loop = self._loop
        return RunStats(loop.received, loop.lost()) if loop else RunStats(0, 0)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        self.loaded.close()

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
