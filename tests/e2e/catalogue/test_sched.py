"""The scheduler tools (runqlat, runqslower, runqlen, cpudist, offcputime,
profile) against a child whose context switches are counted exactly.

The child blocks on stdin before the tool starts; told to go, it sleeps
SLEEPS times, prints, and blocks on stdin again. Its context switches in
between, D, come from /proc/PID/status (voluntary + nonvoluntary switches
out, read while it is blocked both times). Every switch-out in that window
is followed by a switch-in except the last, and the first switch-in (the
wake-up to go) follows a switch-out made before the tool was attached, so:
runqlat counts D waits (every switch-in followed a wake-up or preemption it
saw), cpudist D on-CPU periods and -O D - 1 off-CPU periods, offcputime and
runqslower with no threshold D - 1 and D events.

Bench loads (events per second generators), one line per tool:
- runqlat: N threads ping-ponging a byte over pipes (each round trip: 2 wake-ups and 2 switches).
- runqslower: the same ping-pong with the threshold at 0 (an event per switch-in).
- runqlen: 2N spinning processes on N CPUs for a fixed time (samples = HZ * CPUs * seconds).
- cpudist: the pipe ping-pong (one on-CPU period per switch).
- offcputime: the pipe ping-pong, -m 0 (one event with two stack ids per switch-in).
- profile: one spinning process per CPU, -F 999 (samples = HZ * CPUs * seconds).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest

from ..helpers import Running, command
from .cgroups import new_cgroup

pytestmark = pytest.mark.usefixtures("kernel")

SLEEPS = 20
CHILD = r"""
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME: a comm of its own
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[2])):
    time.sleep(0.002)
print("slept", flush=True)
sys.stdin.readline()
"""
SPIN = r"""
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    pass
"""


P = ParamSpec("P")
R = TypeVar("R")


def once_more(test: Callable[P, R]) -> Callable[P, R]:
    """Run a counting test a second time if its first run fails.

    Rarely (about 1 run in 25 here, while other sessions were loading and
    unloading programs of their own), one of the child's switch-ins never
    reaches the tool: a copy of runqlat with
    counters in the kernel saw all 21 wake-ups recorded and 20 switch-ins
    looked up, none missing its start, while /proc counted 21 switches. A
    tool that miscounts fails both runs; each run still asserts exact counts."""
    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return test(*args, **kwargs)
        except AssertionError:
            return test(*args, **kwargs)
    return run


def switches(pid: int) -> int:
    """Context switches out of pid so far: voluntary + nonvoluntary."""
    total = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def wait_blocked(pid: int) -> None:
    """Until pid sleeps in read(2) (its stdin): /proc/PID/syscall names the
    syscall it is blocked in, and /proc/PID/stat says S."""
    read_nr = {"x86_64": 0, "aarch64": 63}[os.uname().machine]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/syscall") as sc:
            nr = sc.read().split()[0]
        if state == "S" and nr == str(read_nr):
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} never blocked in read")


class Child:
    """The sleeper described above, under a comm of its own."""

    def __init__(self, name: str = "pyeusched", group: Path | None = None) -> None:
        self.comm = f"{name}{os.getpid() % 1000}"[:15]
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, self.comm, str(SLEEPS)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None and self.proc.stdout.readline() == b"ready\n"
        wait_blocked(self.pid)
        if group is not None:  # moved while it sleeps: no switch of its own
            (group / "cgroup.procs").write_text(str(self.pid))
        self.before = switches(self.pid)

    def go(self) -> int:
        """Let it sleep SLEEPS times; its context switches meanwhile (D)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == b"slept\n"
        wait_blocked(self.pid)
        return switches(self.pid) - self.before

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@contextmanager
def child(group: Path | None = None) -> Iterator[Child]:
    c = Child(group=group)
    try:
        yield c
    finally:
        c.kill()


def cgroup() -> AbstractContextManager[Path]:
    return new_cgroup("pyeunomia-sched")


def tool(*args: str) -> Running:
    return Running([*command("ecli"), "run", "-j", *args], "attached")


def results(r: Running) -> list[dict[str, Any]]:
    """The JSON lines a tool printed, after stopping it (maps print at exit)."""
    assert r.stop() == 0, r.stderr_lines
    return [json.loads(line) for line in r.rest()]


def hists(entries: list[dict[str, Any]], name: str = "hists") -> dict[Any, list[int]]:
    return {e["key"]: e["value"]["slots"] for e in entries if e.get("map") == name}


@once_more
def test_runqlat_counts_every_wait_of_the_pid():
    with child() as c:
        r = tool("runqlat", "-p", str(c.pid), "-P")
        d = c.go()
        out = hists(results(r))
    assert list(out) == [c.pid]  # -P: one histogram, keyed by the traced pid
    assert sum(out[c.pid]) == d
    assert d >= SLEEPS


@once_more
def test_runqlat_per_thread_in_msecs():
    with child() as c:
        r = tool("runqlat", "-p", str(c.pid), "-L", "-m")
        d = c.go()
        entries = results(r)
    (entry,) = [e for e in entries if e.get("map") == "hists"]
    assert entry["key"] == c.pid and entry["value"]["comm"] == c.comm
    assert sum(entry["value"]["slots"]) == d


@once_more
def test_runqlat_per_pid_namespace():
    with child() as c:
        r = tool("runqlat", "-p", str(c.pid), "--pidnss")
        d = c.go()
        out = hists(results(r))
        inum = os.stat(f"/proc/{c.pid}/ns/pid").st_ino  # the namespace's inode number
    assert list(out) == [inum] and sum(out[inum]) == d


@once_more
def test_runqlat_pid_filter_leaves_others_out():
    with child() as c, child() as other:
        r = tool("runqlat", "-p", str(other.pid), "-P")
        c.go()
        d_other = other.go()
        out = hists(results(r))
    assert list(out) == [other.pid] and sum(out[other.pid]) == d_other


@pytest.mark.parametrize("name", ["runqlat", "cpudist"])
@once_more
def test_cgroup_filter(name: str):
    """-c: only the child moved into a fresh cgroup is counted, not the one left in the test's own."""
    with cgroup() as group, child(group) as inside, child() as outside:
        r = tool(name, "-c", str(group), "-P")
        d = inside.go()
        outside.go()
        out = hists(results(r))
    assert list(out) == [inside.pid] and sum(out[inside.pid]) == d


@once_more
def test_runqslower_every_switch_in_with_threshold_0():
    with child() as c:
        r = tool("runqslower", "-p", str(c.pid), "--min-us", "0")
        d = c.go()
        time.sleep(0.3)  # the ring's wake-up batches events up to 10 ms
        events = results(r)
    assert len(events) == d
    assert {(e["pid"], e["tgid"], e["task"]) for e in events} == {(c.pid, c.pid, c.comm)}
    assert {(e["prev_pid"], e["prev_task"]) for e in events} == {(0, "")}  # no -P


@once_more
def test_runqslower_previous_task():
    """-P: each event names the task switched out for the child; the child never preempts itself."""
    with child() as c:
        r = tool("runqslower", "-p", str(c.pid), "--min-us", "0", "-P")
        d = c.go()
        events = results(r)
    assert len(events) == d
    assert all(e["prev_task"] and e["prev_pid"] != c.pid for e in events)


def test_runqslower_threshold_and_tid_filter():
    with child() as c:
        r = tool("runqslower", "-t", str(c.pid), "--min-us", "10000000")  # 10 s: none of its waits
        c.go()
        events = results(r)
    assert events == []


@once_more
def test_cpudist_on_cpu_periods():
    with child() as c:
        r = tool("cpudist", "-p", str(c.pid), "-P")
        d = c.go()
        out = hists(results(r))
    assert list(out) == [c.pid] and sum(out[c.pid]) == d


@once_more
def test_cpudist_off_cpu_periods():
    with child() as c:
        r = tool("cpudist", "-O", "-p", str(c.pid))
        d = c.go()
        out = hists(results(r))
    assert list(out) == [0xFFFFFFFF]  # one histogram for all: key -1
    slots = out[0xFFFFFFFF]
    assert sum(slots) == d - 1
    # each of its sleeps is >= 2 ms off the CPU: at least SLEEPS periods in slots 2^10 us and up
    assert sum(slots[10:]) >= SLEEPS


@once_more
def test_offcputime_events_with_stacks():
    with child() as c:
        r = tool("offcputime", "-p", str(c.pid), "-m", "0")
        d = c.go()
        events = results(r)
    assert len(events) == d - 1
    assert {(e["pid"], e["tid"], e["comm"]) for e in events} == {(c.pid, c.pid, c.comm)}
    assert sum(1 for e in events if e["delta_us"] >= 2000) >= SLEEPS  # each sleep lasts 2 ms or more
    # its sleeps, symbolized: the kernel's nanosleep path (the 2 BPF frames skipped) and libc's call
    sleeps = [e for e in events if "do_nanosleep" in [f["symbol"] for f in e["kstack"]]]
    assert len(sleeps) >= SLEEPS
    # the program and bpf_trace_run4 are skipped; __traceiter_sched_switch is there when the tracepoint
    # has more than one probe (another tool on sched_switch), else its static call goes to bpf_trace_run4
    tops = [next(f["symbol"] for f in e["kstack"] if f["symbol"] != "__traceiter_sched_switch") for e in sleeps]
    assert tops == ["__schedule"] * len(sleeps)
    assert [bool(e["ustack"]) and e["ustack"][0]["symbol"].startswith("clock_nanosleep") for e in sleeps] == \
        [True] * len(sleeps)


@once_more
def test_offcputime_folded_stacks_sum_the_time(tmp_path: Path):
    folded = tmp_path / "offcpu.folded"
    with child() as c:
        r = tool("--folded", str(folded), "offcputime", "-p", str(c.pid), "-m", "0")
        c.go()
        events = results(r)
    lines = folded.read_text().splitlines()
    assert lines and all(line.startswith(c.comm + ";") for line in lines)
    # weighted by delta_us (the stack_trace mapping's weight): the same microseconds the events carry
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == sum(e["delta_us"] for e in events)
    assert sum(e["delta_us"] for e in events) >= SLEEPS * 2000


@once_more
def test_offcputime_raw_tp_twin_user_stacks_only():
    with child() as c:
        r = tool("--skip", "sched_switch_btf", "offcputime", "-p", str(c.pid), "-m", "0", "-U")
        d = c.go()
        events = results(r)
    assert len(events) == d - 1
    assert all(e["kstack"] == [] for e in events)  # -U: no kernel stack taken
    assert sum(1 for e in events if e["ustack"][:1] and e["ustack"][0]["symbol"].startswith("clock_nanosleep")) \
        >= SLEEPS


def test_offcputime_stack_depth_storage_and_duration():
    """--perf-max-stack-depth 3 and --stack-storage-size 1 size the stack map
    (@resize): 3 frames at most, one stack stored (the others' ids fail:
    empty); the positional duration (2 s) stops it by itself."""
    with child() as c:
        r = tool("offcputime", "-p", str(c.pid), "-m", "0", "--perf-max-stack-depth", "3",
                 "--stack-storage-size", "1", "2")
        d = c.go()
        assert r.proc.wait(20) == 0
        events = results(r)
    assert len(events) == d - 1
    stacks = {tuple(f["address"] for f in e[k]) for e in events for k in ("kstack", "ustack") if e[k]}
    assert len(stacks) == 1 and 1 <= len(next(iter(stacks))) <= 3


def test_offcputime_min_block_time_and_kernel_stacks_only():
    with child() as c:
        r = tool("offcputime", "-p", str(c.pid), "-m", "1000000", "-K")  # 1 s: no period lasts that long
        c.go()
        events = results(r)
    assert events == []


def test_profile_samples_the_pid():
    comm = f"pyeuspin{os.getpid() % 1000}"
    spin = subprocess.Popen([sys.executable, "-c", SPIN, comm, "30"], stdout=subprocess.PIPE)
    try:
        assert spin.stdout is not None and spin.stdout.readline() == b"ready\n"
        r = tool("-F", "99", "profile", "-p", str(spin.pid), "-U")
        time.sleep(1)
        events = results(r)
    finally:
        spin.kill()
        spin.wait()
    assert len(events) >= 10  # ~1 s of one spinning CPU at 99 Hz, on a shared machine
    assert {(e["pid"], e["tid"], e["comm"]) for e in events} == {(spin.pid, spin.pid, comm)}
    assert all(e["kstack"] == [] and e["ustack"] for e in events)  # -U: user stacks only


def test_profile_pid_list_stack_depth_folded_frequency_and_duration():
    """-p A,B (a list, in the kernel), --perf-max-stack-depth 2 (@resize),
    then `-f -d -F 99 1`: folded stacks on stdout, a "-" between user and
    kernel frames, at 99 Hz, stopped after 1 s (the third spins in stat(2))."""
    comms = [f"pyeuprf{n}{os.getpid() % 1000}" for n in range(3)]
    in_stat = SPIN.replace("import ctypes, sys, time", "import ctypes, os, sys, time") \
        .replace("    pass", "    os.stat('/')")
    spins = [subprocess.Popen([sys.executable, "-c", in_stat if n == 2 else SPIN, comm, "30"], stdout=subprocess.PIPE)
             for n, comm in enumerate(comms)]
    try:
        for p in spins:
            assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        listed = f"{spins[0].pid},{spins[1].pid}"
        r = tool("-F", "99", "profile", "-p", listed, "-U", "--perf-max-stack-depth", "2")
        time.sleep(1)
        events = results(r)
        folded = Running([*command("ecli"), "run", "profile", "-p", str(spins[2].pid), "-f", "-d", "-F", "99", "1"],
                         "attached")
        assert folded.proc.wait(20) == 0, folded.stderr_lines  # its duration ended it
        lines = folded.rest()
    finally:
        for p in spins:
            p.kill()
            p.wait()
    assert {e["pid"] for e in events} == {spins[0].pid, spins[1].pid}  # not the third spinner
    assert all(1 <= len(e["ustack"]) <= 2 for e in events)
    assert lines and all(line.startswith(comms[2] + ";") for line in lines)  # comm;caller;callee count
    stacks = [line.rsplit(" ", 1)[0].split(";") for line in lines]
    both = [s for s in stacks if not s[1].endswith("_[k]") and s[-1].endswith("_[k]")]
    assert both and all(s[s.index("-") + 1].endswith("_[k]") and not s[s.index("-") - 1].endswith("_[k]")
                        for s in both)  # -d: "-" between the user frames and the kernel ones
    assert "at 99 Hz on" in "".join(folded.stderr_lines) and sum(int(line.rsplit(" ", 1)[1]) for line in lines) > 0


def test_runqlen_per_cpu():
    """Three spinners pinned to the last CPU: every sample there finds at least 2 waiting."""
    last = max(os.sched_getaffinity(0))
    spinners = []
    try:
        for n in range(3):
            p = subprocess.Popen([sys.executable, "-c", SPIN, f"pyeuqlen{n}", "30"], stdout=subprocess.PIPE,
                                 preexec_fn=lambda: os.sched_setaffinity(0, {last}))
            spinners.append(p)
            assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        r = tool("-F", "99", "runqlen", "-C")
        time.sleep(1)
        entries = results(r)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    per_cpu = {e["key"]: e["value"]["slots"] for e in entries if e.get("global") == "cpu_hists"}
    assert not any(e.get("global") == "hist" for e in entries)  # -C: only the per-CPU histograms
    assert set(per_cpu) == os.sched_getaffinity(0)
    assert sum(per_cpu[last]) > 0 and per_cpu[last][0] == per_cpu[last][1] == 0
    # the globals' @histogram comment: unit and per-index key, as a map's
    assert [(e["unit"], e["key_text"]) for e in entries if e.get("global") == "cpu_hists"] == [
        ("runqlen", str(cpu)) for cpu in sorted(per_cpu)]


def test_runqlen_occupancy_per_cpu_at_the_frequency_given():
    """-O: on the CPU where two spinners are pinned every sample finds one
    waiting (RUNQOCC 100.00%); -f 99 (the runner's -F) sets the rate; no
    histogram is filled."""
    last = max(os.sched_getaffinity(0))
    spinners = []
    try:
        for n in range(2):
            p = subprocess.Popen([sys.executable, "-c", SPIN, f"pyeuqocc{n}", "30"], stdout=subprocess.PIPE,
                                 preexec_fn=lambda: os.sched_setaffinity(0, {last}))
            spinners.append(p)
            assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        r = tool("runqlen", "-O", "-C", "-f", "99")
        time.sleep(1)
        entries = results(r)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    occ = {e["key"]: e for e in entries if e.get("map") == "occupancy"}
    assert set(occ) == os.sched_getaffinity(0) and not [e for e in entries if "global" in e]
    busy = occ[last]["value"]
    assert busy["samples"] > 0 and busy["queued"] == busy["samples"] and occ[last]["queued_text"] == "100.00%"
    assert "at 99 Hz on" in "".join(r.stderr_lines)


@once_more
def test_runqlat_raw_tp_twins():
    btf = "sched_wakeup_btf,sched_wakeup_new_btf,sched_switch_btf"
    with child() as c:
        r = tool("--skip", btf, "runqlat", "-p", str(c.pid), "-P")
        d = c.go()
        out = hists(results(r))
    assert list(out) == [c.pid] and sum(out[c.pid]) == d
