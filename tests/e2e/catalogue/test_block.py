"""Block I/O and interrupt tools against real activity: O_DIRECT reads and
writes of known sizes and offsets on loop devices over files in /tmp (exact
histogram counts, sectors, sizes, pids), and interrupts checked against the
kernel's own counters in /proc/interrupts and /proc/softirqs.

Bench loads, one per tool (events per second come from the generator's rate):
- biolatency: a process doing 4 KiB O_DIRECT preads in a loop on a loop device
  (one request, one histogram count per read); `biolatency -d LOOP`.
- biosnoop: the same reads; one event per read; `biosnoop -d LOOP`.
- biopattern: the same reads, alternately sequential and random offsets; one
  count per read; `biopattern -d LOOP`.
- bitesize: O_DIRECT preads of 4/16/64 KiB in turn; `bitesize -c COMM`.
- hardirqs: O_DIRECT writes + fdatasync to a file on the real disk (one virtio
  completion interrupt each), or UDP to an outside address (NIC interrupts);
  `hardirqs -C` and `hardirqs`.
- softirqs: UDP datagrams sent over loopback in a loop (one NET_RX softirq
  each); `softirqs`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ...conftest import require
from ..helpers import Running, command, temp_dir
from .cgroups import new_cgroup

pytestmark = pytest.mark.usefixtures("kernel")

SECTOR = 512
# A block device's O_DIRECT reads are sync requests ("RS") from 6.1 on (seen on 6.1, 6.12, 6.18); 5.10 says "R"
READ_RWBS = "R" if tuple(int(p) for p in os.uname().release.split("-")[0].split(".")[:2]) < (6, 0) else "RS"
CHILD = r"""
import json, mmap, os, sys
with open("/proc/self/comm", "w") as f:
    f.write(sys.argv[1])
plan = json.loads(sys.argv[2])  # [[device, "r" or "w", offset, size], ...]
buf = mmap.mmap(-1, 1 << 20)  # page aligned, as O_DIRECT wants
sys.stdin.readline()
for dev, how, offset, size in plan:
    fd = os.open(dev, (os.O_RDONLY if how == "r" else os.O_WRONLY) | os.O_DIRECT)
    view = memoryview(buf)[:size]
    n = os.preadv(fd, [view], offset) if how == "r" else os.pwritev(fd, [view], offset)
    assert n == size, (n, size)
    os.close(fd)
print("done", flush=True)
"""


class Loop:
    """A loop device over a 16 MiB file in /tmp, detached at the end."""

    def __init__(self) -> None:
        self.backing = temp_dir() / "disk.img"
        with open(self.backing, "wb") as f:
            f.truncate(16 << 20)
        self.path = subprocess.run(["losetup", "--find", "--show", str(self.backing)], check=True,
                                   capture_output=True, text=True).stdout.strip()
        rdev = os.stat(self.path).st_rdev
        self.dev = os.major(rdev) << 20 | os.minor(rdev)  # the kernel's dev_t, as the block tracepoints carry
        self.name = os.path.basename(self.path)  # loop3: what -d takes too (the `disk` converter)
        self.maj_min = f"{os.major(rdev)}:{os.minor(rdev)}"

    def scheduler(self, name: str) -> None:
        """Requests go through an I/O scheduler (block_rq_insert, then issue) rather than straight to the driver."""
        Path(f"/sys/block/{os.path.basename(self.path)}/queue/scheduler").write_text(name)

    def close(self) -> None:
        subprocess.run(["losetup", "-d", self.path], check=True)
        self.backing.unlink()


@pytest.fixture
def loops() -> Iterator[tuple[Loop, Loop]]:
    pair: list[Loop] = []
    try:
        pair.append(Loop())
        pair.append(Loop())
        yield pair[0], pair[1]
    finally:
        for loop in pair:
            loop.close()


class Child:
    """A process under a unique name that does exactly `plan`'s O_DIRECT I/O when told to."""

    def __init__(self, plan: list[tuple[str, str, int, int]], tag: str = "io") -> None:
        self.name = f"pyeu{tag}{os.getpid() % 1000}{int(time.monotonic() * 1000) % 10000}"[:15]
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, self.name, json.dumps(plan)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def go(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "done\n"
        assert self.proc.wait(10) == 0


def traced(tool: str, *args: str, children: tuple[Child, ...] = (), between: Any = None) -> list[dict[str, Any]]:
    """Run `ecli run -j TOOL ARGS` while the children do their I/O (or
    `between()` runs); every JSON line it printed, events and maps at exit."""
    tracer = Running([*command("ecli"), "run", "-j", tool, *args], "attached")
    try:
        for child in children:
            child.go()
        if between is not None:
            between()
    finally:
        code = tracer.stop(signal.SIGINT)
    assert code == 0, tracer.stderr_lines
    assert not any("Traceback" in line for line in tracer.stderr_lines), tracer.stderr_lines
    return [json.loads(line) for line in tracer.rest()]


def maps(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in lines if e.get("map") == name]


def counted(slots: list[int]) -> dict[int, int]:
    return {i: n for i, n in enumerate(slots) if n}


# --- block I/O ------------------------------------------------------------------------------------

def reads(loop: Loop, *sizes: int, start: int = 0) -> list[tuple[str, str, int, int]]:
    """Reads of these sizes one after the other from `start` (sequential)."""
    plan, offset = [], start
    for size in sizes:
        plan.append((loop.path, "r", offset, size))
        offset += size
    return plan


def test_biolatency_per_disk_counts_every_request_of_that_disk_only(loops):
    a, b = loops
    child = Child(reads(a, *[4096] * 5) + reads(b, *[4096] * 3) + [(a.path, "w", 1 << 20, 8192)] * 2)
    lines = traced("biolatency", "-D", "-d", str(a.dev), children=(child,))
    hists = maps(lines, "hists")
    assert [h["key"] for h in hists] == [{"dev": a.dev, "rwbs": ""}]  # -d: b's three reads are not there
    assert sum(hists[0]["value"]["slots"]) == 7


@pytest.mark.parametrize("tool", ["biolatency", "biosnoop", "biopattern", "bitesize"])
def test_a_disk_that_does_not_exist_is_one_error_line(tool: str):
    done = subprocess.run([*command("ecli"), "run", tool, "-d", "nosuchdisk9"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("ecli: error: argument -d/--disk/--targ_dev: no block device is named 'nosuchdisk9': "
                                  "give one of ") and done.stderr.count("\n") == 1, done.stderr


def test_biolatency_per_flag_with_queued_time(loops):
    a, _b = loops
    child = Child(reads(a, 4096, 16384, 65536) + [(a.path, "w", 2 << 20, 4096)] * 4)
    lines = traced("biolatency", "-F", "-Q", "-m", "-d", a.maj_min, children=(child,))
    by_flags = {h["key"]["rwbs"]: sum(h["value"]["slots"]) for h in maps(lines, "hists")}
    assert by_flags == {READ_RWBS: 3, "WS": 4}  # O_DIRECT: sync reads and sync writes, no disk key without -D
    assert all(h["key"]["dev"] == 0 for h in maps(lines, "hists"))


def test_biosnoop_reports_each_request_exactly(loops):
    a, b = loops
    plan = [*reads(a, 4096, 16384), (a.path, "w", 3 << 20, 65536), *reads(b, 4096)]
    child = Child(plan)
    events = [e for e in traced("biosnoop", "-d", a.name, children=(child,)) if "map" not in e]
    ours = [e for e in events if e["pid"] == child.pid]
    assert [(e["dev"], e["rwbs"], e["sector"], e["len"]) for e in ours] == [
        (a.dev, READ_RWBS, 0, 4096), (a.dev, READ_RWBS, 8, 16384), (a.dev, "WS", (3 << 20) // SECTOR, 65536)]
    assert all(e["comm"] == child.name and e["qdelta"] == 0 and e["delta"] > 0 for e in ours)
    assert not [e for e in events if e["dev"] != a.dev]  # -d: the read of b is not there


def test_biosnoop_duration_by_position(loops):
    """`biosnoop 2`: libbpf-tools' positional duration (the runner's -d): it stops by itself."""
    a, _b = loops
    child = Child(reads(a, 4096))
    tracer = Running([*command("ecli"), "run", "-j", "biosnoop", "-d", a.name, "2"], "attached")
    child.go()
    assert tracer.proc.wait(20) == 0, tracer.stderr_lines  # no signal: its duration ended it
    events = [json.loads(line) for line in tracer.rest()]
    assert [(e["pid"], e["sector"], e["len"]) for e in events if "map" not in e] == [(child.pid, 0, 4096)]


def test_biosnoop_queued(loops):
    a, _b = loops
    schedulers = Path(f"/sys/block/{os.path.basename(a.path)}/queue/scheduler").read_text()
    require("mq-deadline" in schedulers, "the mq-deadline I/O scheduler (an insert before each issue)")
    a.scheduler("mq-deadline")
    child = Child(reads(a, 8192, 4096))
    events = [e for e in traced("biosnoop", "-Q", "-d", str(a.dev), children=(child,)) if "map" not in e]
    ours = [e for e in events if e["pid"] == child.pid]
    assert [(e["sector"], e["len"], e["comm"]) for e in ours] == [(0, 8192, child.name), (16, 4096, child.name)]
    assert all(e["delta"] > 0 and e["qdelta"] > 0 for e in ours)  # inserted, then issued, then completed


@pytest.fixture
def group() -> Iterator[Path]:
    """A cgroup v2 group of our own (the hybrid mount's, or the unified one)."""
    with new_cgroup("pyeu-blk") as path:
        yield path


def test_biosnoop_cgroup_filter(loops, group):
    a, _b = loops
    inside, outside = Child(reads(a, 4096)), Child(reads(a, 4096), tag="out")
    (group / "cgroup.procs").write_text(str(inside.pid))
    events = [e for e in traced("biosnoop", "-c", str(group), children=(inside, outside)) if "map" not in e]
    assert [(e["pid"], e["sector"], e["cgroup_id"]) for e in events] == [(inside.pid, 0, group.stat().st_ino)]


def test_biolatency_cgroup_filter(loops, group):
    a, _b = loops
    inside, outside = Child(reads(a, 4096, 4096, 8192)), Child(reads(a, 4096, 4096), tag="out")
    (group / "cgroup.procs").write_text(str(inside.pid))
    lines = traced("biolatency", "-D", "-c", str(group), children=(inside, outside))
    assert [(h["key"]["dev"], sum(h["value"]["slots"])) for h in maps(lines, "hists")] == [(a.dev, 3)]


def test_biopattern_sequential_and_random(loops):
    a, b = loops
    sequential = reads(a, 4096, 4096, 8192, 4096)  # 1 random (the first) + 3 sequential
    scattered = [(a.path, "r", off, 4096) for off in (10 << 20, 5 << 20, 12 << 20)]  # 3 random
    child = Child(sequential + scattered + reads(b, 4096, 4096))
    lines = traced("biopattern", "-d", str(a.dev), children=(child,))
    [counter] = maps(lines, "counters")
    assert counter["key"] == a.dev  # -d: b is not there
    value = counter["value"]
    assert (value["random"], value["sequential"], value["count"]) == (4, 3, 7)
    assert value["bytes"] == 4096 * 5 + 8192 + 4096
    assert value["last_sector"] == ((12 << 20) + 4096) // SECTOR


def test_bitesize_histogram_per_comm(loops):
    a, _b = loops
    child = Child(reads(a, 4096, 4096, 4096, 16384, 16384, 65536, 1024))
    other = Child(reads(a, 4096, 4096), tag="other")
    lines = traced("bitesize", "-c", child.name, children=(child, other))
    [hist] = maps(lines, "hists")
    assert hist["key"] == {"comm": child.name}  # -c: the other process's reads are not there
    assert counted(hist["value"]["slots"]) == {0: 1, 2: 3, 4: 2, 6: 1}  # KiB: 1 -> 0, 4 -> 2, 16 -> 4, 64 -> 6


def test_bitesize_per_disk_filter(loops):
    a, b = loops
    child = Child(reads(a, 8192) + reads(b, 4096, 4096))
    lines = traced("bitesize", "-d", b.path, "-c", child.name, children=(child,))
    [hist] = maps(lines, "hists")
    assert counted(hist["value"]["slots"]) == {2: 2}


# --- interrupts -----------------------------------------------------------------------------------

def proc_interrupts() -> dict[str, int]:
    """Lines of /proc/interrupts with one handler: its name -> its count over all CPUs."""
    lines = Path("/proc/interrupts").read_text().splitlines()
    cpus = len(lines[0].split())
    counts = {}
    for line in lines[1:]:
        fields = line.split()
        if not fields[0].rstrip(":").isdigit() or len(fields) < cpus + 2 or "," in line:
            continue
        counts[fields[-1]] = sum(int(n) for n in fields[1:cpus + 1])
    return counts


def proc_softirqs() -> list[int]:
    """/proc/softirqs: each vector's count over all CPUs, in vector order (HI, TIMER, NET_TX, NET_RX, ...)."""
    return [sum(int(n) for n in line.split()[1:]) for line in Path("/proc/softirqs").read_text().splitlines()[1:]]


def disk_writes(n: int = 8) -> None:
    """O_DIRECT writes with fdatasync to a file on the real disk: its interrupts fire."""
    path = temp_dir() / "irq-writes"
    import mmap
    buf = mmap.mmap(-1, 4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    try:
        for i in range(n):
            os.pwritev(fd, [buf], i * 4096)
            os.fdatasync(fd)
    finally:
        os.close(fd)
        path.unlink()


def sandwich(tool: str, *args: str, read: Any, activity: Any) -> tuple[Any, Any, Any, Any, list[dict[str, Any]]]:
    """The kernel's counters read before the tool starts, once it is attached,
    after the activity and after it stopped: the tool saw everything between
    the middle two and nothing outside the outer two."""
    before = read()
    tracer = Running([*command("ecli"), "run", "-j", tool, *args], "attached")
    try:
        attached = read()
        activity()
        done = read()
    finally:
        code = tracer.stop(signal.SIGINT)
    after = read()
    assert code == 0, tracer.stderr_lines
    return before, attached, done, after, [json.loads(line) for line in tracer.rest()]


def test_hardirqs_counts_equal_proc_interrupts():
    before, attached, done, after, lines = sandwich("hardirqs", "-C", read=proc_interrupts, activity=disk_writes)
    infos = {e["key"]["name"]: e["value"] for e in maps(lines, "infos")}
    checked = 0
    for name, value in infos.items():
        assert value["time"] == 0  # -C: counts only
        if name in before and name in after:
            assert done[name] - attached[name] <= value["count"] <= after[name] - before[name], name
            checked += value["count"]
    for name in before:  # a line that fired while the tool surely ran is in its output
        if done[name] > attached[name]:
            assert name in infos, name
    assert checked > 0  # the disk's writes: at least their completion interrupts


def test_hardirqs_time_and_distributions():
    lines = traced("hardirqs", between=disk_writes)
    infos = maps(lines, "infos")
    assert infos and all(e["value"]["count"] > 0 and e["value"]["time"] > 0 for e in infos)
    assert not maps(lines, "hists") and not maps(lines, "starts")
    dist = maps(traced("hardirqs", "-d", between=disk_writes), "hists")
    assert dist and all(sum(h["value"]["slots"]) > 0 for h in dist)


NET_RX = 3


def udp_on_loopback(n: int = 40) -> None:
    """n datagrams over lo: each is taken in by one NET_RX softirq on the sending CPU."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        for _ in range(n):
            tx.sendto(b"x", rx.getsockname())
        for _ in range(n):
            assert rx.recv(16) == b"x"


def test_softirqs_counts_equal_proc_softirqs():
    before, attached, done, after, lines = sandwich("softirqs", read=proc_softirqs, activity=udp_on_loopback)
    stats = {e["key"]: e["value"] for e in maps(lines, "stats")}
    for vec, value in stats.items():
        assert done[vec] - attached[vec] <= value["count"] <= after[vec] - before[vec], vec
        assert value["time"] > 0
    assert stats[NET_RX]["count"] >= 40  # our datagrams
    assert not maps(lines, "hists")


def test_softirqs_distributions():
    lines = traced("softirqs", "-d", between=udp_on_loopback)
    hists = {e["key"]: sum(e["value"]["slots"]) for e in maps(lines, "hists")}
    assert hists[NET_RX] >= 40
    assert not maps(lines, "stats")

