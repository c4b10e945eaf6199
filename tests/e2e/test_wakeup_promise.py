"""The reader's wakeup promise (runner/promise.py, tools/include/wakeup.bpf.h):
while events flow the traced tasks never wake the reader, and once it has
gone quiet the next event wakes it at once."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import pytest

from pyeunomia import Program, open_package
from pyeunomia.kernel import libbpf
from pyeunomia.runner.loop import PROMISE_S
from pyeunomia.runner.promise import VAR

pytestmark = pytest.mark.usefixtures("kernel")

KILLSNOOP = Path(__file__).resolve().parents[2] / "src" / "pyeunomia" / "tools" / "killsnoop" / "package.json"
SIG = 0  # kill(pid, 0): a kill syscall that delivers nothing


def _bss_u64(prog: Program, name: str) -> int:
    found = prog.package.spec.data_var(name)
    assert found is not None, name
    section, offset, _size = found
    info = next(m for m in prog.loaded.maps() if m.name.endswith(section))
    value = libbpf.map_lookup(info.fd, bytes(4), info.value_size)
    assert value is not None
    return int(struct.unpack_from("<Q", value, offset)[0])


def _kills(every_s: float, until: float, made: list[float]) -> None:
    while time.monotonic() < until:
        os.kill(os.getpid(), SIG)
        made.append(time.monotonic())
        time.sleep(every_s)


def test_while_events_flow_the_traced_tasks_do_not_wake_the_reader():
    """300 kills 2 ms apart for 0.6 s: the only wakeup is the first event's,
    when the reader was blocked. Before the promise the program forced one
    every wakeup_interval_ns (10 ms): its last would be near the stream's end."""
    pid = os.getpid()
    with Program(open_package(str(KILLSNOOP)), {"targ_pid": pid}) as prog:
        list(prog.events(duration=0.3))  # attached and idle: the reader blocks
        made: list[float] = []
        start = time.monotonic()
        sender = threading.Thread(target=_kills, args=(0.002, start + 0.6, made))
        sender.start()
        seen = [e for e in prog.events(duration=1.0) if e["pid"] == pid and e["sig"] == SIG]
        sender.join()
        # the program's clock: CLOCK_BOOTTIME, as bpf_ktime_get_boot_ns; times here on CLOCK_MONOTONIC
        to_mono = time.monotonic() - time.clock_gettime(time.CLOCK_BOOTTIME)
        last_wakeup = _bss_u64(prog, "last_wakeup_ns") / 1e9 + to_mono
        promised = _bss_u64(prog, VAR) / 1e9 + to_mono
    assert len(seen) == len(made) > 100
    assert start <= last_wakeup < start + 0.1, (last_wakeup - start, made[-1] - start)
    assert promised >= made[-1] + PROMISE_S - 0.05  # extended by the reads after the last kill


def test_once_quiet_the_next_event_wakes_the_reader_at_once():
    """After the promise has run out the reader blocks for its whole poll
    timeout (here 2 s): an event must wake it, not wait for the timeout."""
    pid = os.getpid()
    with Program(open_package(str(KILLSNOOP)), {"targ_pid": pid}, poll_ms=2000) as prog:
        os.kill(pid, SIG)
        assert [e for e in prog.events(duration=0.2) if e["pid"] == pid]  # a read: the promise starts
        list(prog.events(duration=PROMISE_S + 0.4))  # ... and runs out
        made: list[float] = []
        threading.Timer(0.2, lambda: (os.kill(pid, SIG), made.append(time.monotonic()))).start()
        arrived = None
        for e in prog.events(duration=1.5):
            if e["pid"] == pid:
                arrived = time.monotonic()
                break
    assert arrived is not None and made
    assert arrived - made[0] < 0.3, arrived - made[0]


def test_a_second_events_call_reads_what_came_under_the_first_ones_promise():
    """A kill made right after one events() call, while its promise holds the
    program's wakeups back: the next call (poll timeout 2 s) reads it within
    a few intervals, not at its poll timeout."""
    pid = os.getpid()
    with Program(open_package(str(KILLSNOOP)), {"targ_pid": pid}, poll_ms=2000) as prog:
        os.kill(pid, SIG)
        first = prog.events(duration=1.0)
        assert next(e for e in first if e["pid"] == pid)  # the read that starts a promise
        first.close()  # left at once, as a caller that got what it wanted
        os.kill(pid, SIG)  # under the promise: no wakeup
        made = time.monotonic()
        arrived = None
        for e in prog.events(duration=1.5):
            if e["pid"] == pid:
                arrived = time.monotonic()
                break
    assert arrived is not None
    assert arrived - made < 0.3, arrived - made
