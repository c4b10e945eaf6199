"""Read the per-CPU rings of a BPF_MAP_TYPE_PERF_EVENT_ARRAY straight from memory.

libbpf opens one perf event per CPU (with a wakeup watermark, so the reader is
woken per batch rather than per record) and maps its ring; we read the records
between data_tail and data_head ourselves, in runs of same-sized samples, and
count PERF_RECORD_LOST records.

Sizing, measured with the tutorial's opensnoop (312-byte records) under a
full-speed open loop on a 2-CPU VM (bench/perfab.py, CPU time of the producer):
- A wakeup costs the writing CPU an irq_work, a self-IPI: about 30 µs here (a
  virtualised APIC write). The kernel wakes the reader each time `watermark`
  more bytes are written, read or not: at a quarter of upstream's 64-page ring
  that is one wakeup per 210 records, +130 ns per open. At half of an 8 MiB
  ring it is one per 13,000.
- 64 pages hold 840 records, 4 ms at 220,000 opens/s: a reader that loses its
  CPU for one scheduler tick loses events (0.5-10% seen on a shared machine).
  8 MiB per CPU holds 120 ms, and the poll loop reads every
  `perf_buffer_time_ms` while records flow (EventLoop's linger), so the
  watermark is only the safety net. 0 lost in every run since.
What is left is the programs' own: with bpf_stats, the tutorial's enter
program costs 270 ns per open and its exit 740 ns (960 ns with the 64-page
rings' wakeups), where bpftrace's programs take 7.8 µs: the reader cannot
bring the tutorial's added cost under a tenth of bpftrace's on this host.
The rings are pinned kernel memory (VmPin: 15 MiB here; not in RSS), so the
default is a budget over all CPUs, not 8 MiB times the CPU count.
"""

from __future__ import annotations

import errno
import os
import struct

from ..errors import KernelError
from ..format.writer import EventWriter
from ..kernel import libbpf
from .ringbuf import RUN_MAX

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
HEAD_WORD = 1024 // 8  # perf_event_mmap_page.data_head
TAIL_WORD = 1032 // 8  # perf_event_mmap_page.data_tail
SAMPLE_HEADER = 12  # perf_event_header, then the u32 size of the raw data
_U64 = struct.Struct("<Q")
_HEADER = struct.Struct("<IHH")
_U32 = struct.Struct("<I")

RING_BUDGET = 16 << 20  # bytes of rings per perf array over all CPUs, by default
RING_MAX = 8 << 20  # bytes per CPU: 120 ms of a full-speed open loop


def ring_pages(at_least: int = 64, cpus: int | None = None, page: int | None = None) -> int:
    """Pages per CPU ring when the caller did not ask for a number: the budget
    shared by the CPUs (RING_MAX at most), and never less than `at_least`
    (a package's perf_buffer_pages, upstream's default 64). A power of two,
    as libbpf requires."""
    page = page or os.sysconf("SC_PAGE_SIZE")
    cpus = cpus or os.cpu_count() or 1
    budget = min(RING_MAX, RING_BUDGET // cpus) // page
    return max(_pow2_floor(max(1, budget)), _pow2_ceil(max(1, at_least)))


def _pow2_floor(n: int) -> int:
    return 1 << (n.bit_length() - 1)


def _pow2_ceil(n: int) -> int:
    return 1 << (n - 1).bit_length()


class _Ring:
    def __init__(self, fd: int, memory: memoryview, page: int):
        self.fd = fd
        self.control = memory[:page]
        # data_head and data_tail as native 64-bit words: one aligned load or
        # store each, never torn (see ringbuf.py)
        self.positions = self.control.cast("Q")
        self.data = memory[page:]
        self.size = len(self.data)
        self.words = self.data.cast("Q")


class PerfBufferReader:
    """`page_cnt` pages per CPU ring; with `at_least`, fewer (halving, down to
    `at_least`) when the kernel refuses that much pinned memory: without
    CAP_IPC_LOCK a process may pin RLIMIT_MEMLOCK (8 MiB on Debian) beyond
    perf_event_mlock_kb (516 KiB), so a non-root user granted CAP_BPF and
    CAP_PERFMON gets EPERM for 16 MiB where 64 pages work."""

    def __init__(self, name: str, map_fd: int, page_cnt: int, writer: EventWriter, at_least: int | None = None):
        self.name = name
        self.writer = writer
        self.lost = 0
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            try:
                # Wake the reader each half ring written: a safety net, as the loop
                # reads every perf_buffer_time_ms while records flow, and the poll timeout picks
                # up a trickle (see the module's docstring).
                self._handle = libbpf.perf_buffer_open(map_fd, page_cnt, max(1, page_cnt * page // 2))
                break
            except KernelError as e:
                if e.errno != errno.EPERM or at_least is None or page_cnt // 2 < at_least:
                    raise
                page_cnt //= 2
        self.page_cnt = page_cnt
        self._rings = [_Ring(fd, mem, page) for fd, mem in libbpf.perf_buffer_rings(self._handle)]
        self.fds = [r.fd for r in self._rings]

    def read(self, limit: int = 1 << 62) -> int:
        done = 0
        for ring in self._rings:
            done += self._read_ring(ring)
        return done

    def _read_ring(self, ring: _Ring) -> int:
        positions = ring.positions
        head = positions[HEAD_WORD]
        tail = positions[TAIL_WORD]
        size, data, words = ring.size, ring.data, ring.words
        done = 0
        while tail < head:
            off = tail % size
            if off + 8 > size:
                break  # cannot happen: records are 8-byte aligned
            typ, _misc, rec_size = _HEADER.unpack_from(data, off)
            if rec_size < 8:
                break  # a corrupt ring; stop rather than spin
            if off + rec_size > size:
                record = bytes(data[off:]) + bytes(data[: off + rec_size - size])
                done += self._one(memoryview(record), typ)
                tail += rec_size
                continue
            if typ != PERF_RECORD_SAMPLE:
                self._one(data[off : off + rec_size], typ)
                tail += rec_size
                continue
            length = _U32.unpack_from(data, off + 8)[0]
            n = min(min(head - tail, size - off) // rec_size, RUN_MAX)
            first = words[off >> 3]
            step = rec_size >> 3
            heads = words[off >> 3 : (off >> 3) + n * step : step]
            if n > 1 and bytes(heads) != bytes(heads[:1]) * n:
                n = next((i for i, w in enumerate(heads.tolist()) if w != first), n)
            self.writer.write_run(data[off : off + n * rec_size], SAMPLE_HEADER, rec_size, n, length)
            tail += n * rec_size
            done += n
            positions[TAIL_WORD] = tail
        positions[TAIL_WORD] = tail
        return done

    def _one(self, record: memoryview, typ: int) -> int:
        if typ == PERF_RECORD_SAMPLE:
            length = _U32.unpack_from(record, 8)[0]
            self.writer.write_run(record, SAMPLE_HEADER, len(record), 1, min(length, len(record) - SAMPLE_HEADER))
            return 1
        if typ == PERF_RECORD_LOST:
            lost = _U64.unpack_from(record, 16)[0]
            self.lost += lost
            self.writer.report_lost(lost, f"perf buffer '{self.name}'")
        return 0

    def close(self) -> None:
        for ring in self._rings:
            for view in (ring.words, ring.positions, ring.data, ring.control):
                view.release()
        self._rings = []
        libbpf.perf_buffer_close(self._handle)
