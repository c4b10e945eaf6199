"""Read a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) straight from its memory.

The kernel maps the consumer position page read-write, and the producer page
followed by the data area read-only. We walk record headers between the two
positions and hand runs of same-sized records to the writer: no syscall and no
callback per record, and one consumer-position store per run.

The kernel offers the data area twice in a row, so that a record wrapping
around its end is contiguous; libbpf maps both copies. We map it once: both
copies count in the process's RSS (16 MiB for an 8 MiB ring), and the one
record per lap that wraps is copied instead.

The positions are 64-bit words shared with the kernel, read and written
through memoryviews cast to native "Q": one aligned 8-byte load or store. The
struct module would copy byte by byte, and the kernel could see a torn
consumer position (seen: reservations failing with 300 MB "in use" in a 16 MB
ring).
"""

from __future__ import annotations

import mmap
import os

from ..format.writer import EventWriter

# Records per run: the consumer position is published after each run, so the
# kernel gets room back while a large backlog is still being formatted.
RUN_MAX = 2048
BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
HEADER_SIZE = 8
FULL_MARGIN = 64 << 10  # "full": less free than this, or a quarter of the ring (perf samples are < 64 KiB)


class RingBufferReader:
    def __init__(self, name: str, map_fd: int, size: int, writer: EventWriter):
        self.name = name
        self.fd = map_fd
        self.size = size
        self.writer = writer
        self.lost = 0
        # A ring buffer counts no drops. Only the reader frees space, so a ring
        # that dropped a record is still within a record of full when next
        # read: with `watch_full`, such reads are counted (a perf array made a
        # ring buffer, runner/perf2ring.py, would otherwise lose records unsaid).
        self.watch_full = False
        self.full_seen = 0
        page = os.sysconf("SC_PAGE_SIZE")
        self._mask = size - 1
        self._consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._producer = mmap.mmap(map_fd, page + size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self._page = page
        self._data = memoryview(self._producer)[page:]
        self._words = self._data.cast("I")
        self._consumer_view = memoryview(self._consumer).cast("Q")
        self._producer_view = memoryview(self._producer)[:8].cast("Q")

    def _consumer_pos(self) -> int:
        return int(self._consumer_view[0])

    def _producer_pos(self) -> int:
        return int(self._producer_view[0])

    def read(self, limit: int = 1 << 62) -> int:
        """Hand every complete record to the writer; returns how many."""
        cons = self._consumer_pos()
        prod = self._producer_pos()
        words, data, mask = self._words, self._data, self._mask
        done = 0
        if self.watch_full and prod - cons > self.size - min(FULL_MARGIN, self.size // 4):
            self.full_seen += 1
        while cons < prod and done < limit:
            off = cons & mask
            word = words[off >> 2]
            if word & BUSY_BIT:
                break
            length = word & ~(BUSY_BIT | DISCARD_BIT)
            stride = HEADER_SIZE + ((length + 7) & ~7)
            if word & DISCARD_BIT:
                cons += stride
                continue
            # Guess that every record up to the producer has this header, then
            # check all the headers at once; stop the run at the first that differs.
            n = min((prod - cons) // stride, limit - done, RUN_MAX, (self.size - off) // stride)
            if n == 0:  # the record wraps around the end of the data area
                if prod - cons < stride:
                    break
                rec = bytes(data[off:]) + bytes(data[: stride - (self.size - off)])
                self.writer.write_run(memoryview(rec), HEADER_SIZE, stride, 1, length)
                cons += stride
                done += 1
                self._consumer_view[0] = cons
                continue
            step = stride >> 2
            heads = words[off >> 2 : (off >> 2) + n * step : step]
            if n > 1 and bytes(heads) != bytes(heads[:1]) * n:
                n = _same_prefix(heads.tolist(), word)
            self.writer.write_run(data[off : off + n * stride], HEADER_SIZE, stride, n, length)
            cons += n * stride
            done += n
            self._consumer_view[0] = cons
        self._consumer_view[0] = cons
        return done

    def close(self) -> None:
        for view in (self._words, self._data, self._consumer_view, self._producer_view):
            view.release()
        self._producer.close()
        self._consumer.close()


def _same_prefix(values: list[int], first: int) -> int:
    for i, v in enumerate(values):
        if v != first:
            return i
    return len(values)
