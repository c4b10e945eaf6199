"""The reader's promise to look at its rings on its own, so that the traced
tasks need not wake it.

A program that wakes its reader at most once per `wakeup_interval_ns`
(tools/include/wakeup.bpf.h, opensnoop) still wakes it once per interval
while events flow, and each wakeup is an irq_work IPI paid by the traced
task: on this project's VM, 72% of execsnoop's exit program's samples were
the IPI's MSR write (perf, 4,000 execs; bpf_stats 4,449 ns per exit). Yet
while events flow the reader looks again within one interval anyway
(EventLoop's linger), so those wakeups are wasted.

So the reader writes the CLOCK_MONOTONIC time until which it promises to look
every interval into the program's global `__u64 reader_polls_until_ns`
(.bss, mmapped: a store, no syscall; the runner's own, no option:
format/options.py RUNNER_OWNED), and the program
does not wake it before then unless a quarter of the ring waits. EventLoop
extends the promise after every read that found records and blocks only
once the promise has passed by one interval and a read after that found
nothing: a record committed under the promise is read by that look. A stale
value only makes the program wake the reader more; the value never goes
back. In a time namespace, CLOCK_MONOTONIC is shifted by
/proc/self/timens_offsets: the kernel's clock is written.
"""

from __future__ import annotations

import mmap
import os
import struct

from ..format.objspec import names_section
from .loader import LoadedObject

VAR = "reader_polls_until_ns"
_U64 = struct.Struct("<Q")


class Promise:
    def __init__(self, region: mmap.mmap, offset: int, shift_ns: int):
        self._region = region
        self._offset = offset
        self._shift = shift_ns

    @classmethod
    def open(cls, loaded: LoadedObject) -> Promise | None:
        """The promise of a loaded program that reads one, or None (no such
        variable, or its section cannot be mapped: the program then wakes
        the reader once per interval, as before)."""
        found = loaded.package.spec.data_var(VAR)
        if found is None:
            return None
        section, offset, size = found
        if size != 8 or offset % 8:
            return None
        info = next((m for m in loaded.maps() if names_section(m.name, section)), None)
        if info is None or info.value_size < offset + size:
            return None
        page = os.sysconf("SC_PAGE_SIZE")
        length = (info.value_size + page - 1) // page * page
        try:
            region = mmap.mmap(info.fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError):  # a map without BPF_F_MMAPABLE (kernels before 5.5)
            return None
        return cls(region, offset, _kernel_shift_ns())

    def until(self, monotonic_ns: int) -> None:
        """Promise to look at the rings every interval until this time."""
        _U64.pack_into(self._region, self._offset, max(0, monotonic_ns + self._shift))

    def close(self) -> None:
        if not self._region.closed:
            _U64.pack_into(self._region, self._offset, 0)  # nobody looks any more: wake as before
            self._region.close()


def _kernel_shift_ns(path: str = "/proc/self/timens_offsets") -> int:
    """What to add to this process's CLOCK_MONOTONIC to get the kernel's
    (a time namespace's monotonic offset, negated); 0 outside one."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] in ("monotonic", "1"):
                    return -(int(parts[1]) * 1_000_000_000 + int(parts[2]))
    except (OSError, ValueError):
        pass
    return 0
