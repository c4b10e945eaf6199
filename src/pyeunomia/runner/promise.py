"""The reader's promise to look at its rings on its own, so that the traced
tasks need not wake it.

A program that wakes its reader at most once per `wakeup_interval_ns`
(tools/include/wakeup.bpf.h, opensnoop) still wakes it once per interval
while events flow, and each wakeup is an irq_work IPI paid by the traced
task: on this project's VM, 72% of execsnoop's exit program's samples were
the IPI's MSR write (perf, 4,000 execs; bpf_stats 4,449 ns per exit). Yet
while events flow the reader looks again within one interval anyway
(EventLoop's linger), so those wakeups are wasted.

So the reader writes the CLOCK_BOOTTIME time (bpf_ktime_get_boot_ns's
clock, which opensnoop's events already read) until which it promises to
look every interval into the program's global `__u64 reader_polls_until_ns`
(.bss, mmapped: one 8-byte store, no syscall; written while running, so no
option: format/options.py WRITTEN_WHILE_RUNNING), and the program does not
wake it before then unless a quarter of the ring waits. EventLoop extends
the promise after every read that found records and blocks only once a look
that began at or after the promise plus one interval found nothing: a record
committed under the promise is read by that look. A loop opened later on the
same program starts from the promise in force. A stale value only makes the
program wake the reader more; the value never goes back while the program
runs. In a time namespace the kernel's clock is written (the offset from
/proc/self/timens_offsets, used only when this process is in the namespace
that file describes; otherwise no promise is made).
"""

from __future__ import annotations

import mmap
import os
import time

from ..format.objspec import names_section
from .loader import LoadedObject

VAR = "reader_polls_until_ns"


class Promise:
    def __init__(self, region: mmap.mmap, offset: int, shift_ns: int):
        self._region = region
        self._word = memoryview(region)[offset:offset + 8].cast("Q")  # one aligned 8-byte store per write
        self._shift = shift_ns
        self.until_s = 0.0  # CLOCK_MONOTONIC seconds: what the program was last told

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
        shift = _kernel_shift_ns()
        if shift is None:
            region.close()
            return None
        return cls(region, offset, shift)

    def until(self, monotonic_s: float) -> None:
        """Promise to look at the rings every interval until this
        CLOCK_MONOTONIC time (as time.monotonic() gives it)."""
        self.until_s = monotonic_s
        boot_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME) + int((monotonic_s - time.monotonic()) * 1e9)
        self._word[0] = max(0, boot_ns + self._shift)

    def close(self) -> None:
        if not self._region.closed:
            self._word[0] = 0  # nobody looks any more: wake as before
            self._word.release()
            self._region.close()


def _kernel_shift_ns(proc: str = "/proc/self") -> int | None:
    """What to add to this process's CLOCK_BOOTTIME to get the kernel's
    (a time namespace's boottime offset, negated; 0 outside one), or None
    when it cannot be known: timens_offsets describes the namespace of this
    process's children, which is its own only when the two links agree."""
    try:
        if os.readlink(f"{proc}/ns/time") != os.readlink(f"{proc}/ns/time_for_children"):
            return None
    except FileNotFoundError:
        return 0  # a kernel without time namespaces (before 5.6)
    except OSError:
        return None
    try:
        with open(f"{proc}/timens_offsets") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] in ("boottime", "7"):
                    return -(int(parts[1]) * 1_000_000_000 + int(parts[2]))
    except (OSError, ValueError):
        return None
    return 0
