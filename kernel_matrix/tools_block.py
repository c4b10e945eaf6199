"""The catalogue's block I/O and interrupt tools on every kernel of the matrix.

Block tools watch a loop device the trigger makes over a file in /tmp: a
child under a unique name (from the check's token, so `bitesize -c` can name
it before it exists) does O_DIRECT reads and a write of known sizes and
offsets, and the checks want the exact histogram counts, sectors, sizes and
the pid. Maps print every `-i` round, as a check stops as soon as its lines
arrive. The guests have no disk and no NIC: hardirqs is checked on the
console serial port's interrupt, softirqs on NET_RX from loopback datagrams.

Standard library only: the guest imports this too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .actions import Ctx, _detach_loop, _later, _loop_device
from .checks import Json, dig, event, normal, parse_json, render, said
from .matrix import Program, row

SECTOR = 512
# (how, offset, size): 4 sequential 4 KiB reads from 0, two 16 KiB reads and a 64 KiB write elsewhere:
# biopattern: 4 random (the first, and the last three) and 3 sequential
PLAN = [("r", 0, 4096), ("r", 4096, 4096), ("r", 8192, 4096), ("r", 12288, 4096),
        ("r", 1 << 20, 16384), ("r", (1 << 20) + 65536, 16384), ("w", 2 << 20, 65536)]
CHILD = r"""
import json, mmap, os, sys
with open("/proc/self/comm", "w") as f:
    f.write(sys.argv[1])
buf = mmap.mmap(-1, 1 << 20)
for how, offset, size in json.loads(sys.argv[3]):
    fd = os.open(sys.argv[2], (os.O_RDONLY if how == "r" else os.O_WRONLY) | os.O_DIRECT)
    view = memoryview(buf)[:size]
    n = os.preadv(fd, [view], offset) if how == "r" else os.pwritev(fd, [view], offset)
    assert n == size, (n, size)
    os.close(fd)
"""
# A block device's O_DIRECT reads are sync requests (rwbs "RS") on 6.1, 6.12 and 6.18; 5.10 does not mark them
READ_RWBS_OLD = "R"
NET_RX = 3
DATAGRAMS = 40


def io_comm(token: str) -> str:
    return f"kmxio{token}"


@dataclass(frozen=True)
class Counted(Json):
    """A JSON map entry whose `fields` equal their templates and whose numbers
    at `path` (a list, added up, or one number) equal `total`, or reach it
    with `at_least`; or whose non-zero slots are exactly `slots` ("2:4,4:2")."""

    path: str = "value.slots"
    total: str = ""
    at_least: bool = False
    slots: str = ""

    def matches(self, line: str, ctx: Ctx) -> bool:
        if not super().matches(line, ctx):
            return False
        value = dig(parse_json(line), self.path)
        if self.slots:
            return isinstance(value, list) and ",".join(
                f"{i}:{n}" for i, n in enumerate(value) if n) == render(self.slots, ctx)
        got = sum(value) if isinstance(value, list) else value
        if not isinstance(got, int):
            return False
        want = int(render(self.total, ctx))
        return got >= want if self.at_least else got == want

    def describe(self, ctx: Ctx) -> str:
        what = f"slots {render(self.slots, ctx)}" if self.slots else \
            f"{self.path} {'>=' if self.at_least else '=='} {render(self.total, ctx)}"
        return f"{super().describe(ctx)} with {what}"


def _counted(fields: dict[str, str | int], path: str = "value.slots", total: str | int = "", at_least: bool = False,
             slots: str = "") -> Counted:
    return Counted({k: normal(v) for k, v in fields.items()}, path=path, total=str(total), at_least=at_least,
                   slots=slots)


def block_io(ctx: Ctx) -> None:
    """A loop device over a 16 MiB file; a child named from the token does PLAN's O_DIRECT I/O on it."""
    backing = f"/tmp/kmx-blk-{ctx['token']}"
    with open(backing, "wb") as f:
        f.truncate(16 << 20)
    dev = _loop_device(backing)
    _later(ctx, lambda: os.unlink(backing))
    _later(ctx, lambda: _detach_loop(dev))  # cleanups run last first: detach, then remove the file
    comm = io_comm(ctx["token"])
    proc = subprocess.Popen([sys.executable, "-c", CHILD, comm, dev, json.dumps(PLAN)], stderr=subprocess.PIPE,
                            text=True)
    _, err = proc.communicate(timeout=30)
    if proc.returncode:
        raise RuntimeError(f"the I/O child failed: {err.strip()[-300:]}")
    rdev = os.stat(dev).st_rdev
    release = tuple(int(p) for p in os.uname().release.split("-")[0].split(".")[:2])
    ctx.update(pid=proc.pid, dev=os.major(rdev) << 20 | os.minor(rdev), comm=comm,
               write_sector=(2 << 20) // SECTOR, read_rwbs=READ_RWBS_OLD if release < (6, 0) else "RS")


def _interrupts() -> dict[str, int]:
    lines = Path("/proc/interrupts").read_text().splitlines()
    cpus = len(lines[0].split())
    counts = {}
    for line in lines[1:]:
        fields = line.split()
        if fields and fields[0].rstrip(":").isdigit() and len(fields) >= cpus + 2 and "," not in line:
            counts[fields[-1]] = sum(int(n) for n in fields[1:cpus + 1])
    return counts


def serial_irq(ctx: Ctx) -> None:
    """Text written to the console's serial port through the tty layer (its
    transmit interrupts), then the name of a line /proc/interrupts saw grow."""
    before = _interrupts()
    # O_NONBLOCK: no wait for a carrier; O_NOCTTY: not the harness's controlling terminal
    fd = os.open("/dev/ttyS0", os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        for _ in range(5):
            os.write(fd, f"kmx: hardirqs check {ctx['token']}\n".encode())
            time.sleep(0.05)
    finally:
        os.close(fd)
    time.sleep(0.3)
    after = _interrupts()
    grown = sorted(name for name, n in after.items() if n > before.get(name, n))
    if not grown:
        raise RuntimeError(f"no interrupt line grew: {sorted(after)}")
    ctx["irq"] = "ttyS0" if "ttyS0" in grown else grown[0]


def udp_datagrams(ctx: Ctx) -> None:
    """DATAGRAMS datagrams over loopback, each taken in by a NET_RX softirq."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", ctx["port"]))
        rx.settimeout(5)
        for _ in range(DATAGRAMS):
            tx.sendto(b"k", ("127.0.0.1", ctx["port"]))
        for _ in range(DATAGRAMS):
            rx.recv(16)
    ctx["pid"] = os.getpid()


ROWS: tuple[Program, ...] = (
    row("tool/biolatency", None, "ecli run -j -i 0.5 biolatency -D", block_io,
        [_counted({"map": "hists", "key.dev": "{dev}", "key.rwbs": ""}, total=len(PLAN))], modules="loop"),
    row("tool/biolatency-F", None, "ecli run -j -i 0.5 biolatency -F -Q", block_io,
        [_counted({"map": "hists", "key.dev": 0, "key.rwbs": "{read_rwbs}"}, total=6),
         _counted({"map": "hists", "key.dev": 0, "key.rwbs": "WS"}, total=1)], modules="loop"),
    row("tool/biosnoop", None, "ecli run -j biosnoop", block_io,
        [event(pid="{pid}", comm="{comm}", dev="{dev}", rwbs="{read_rwbs}", sector=0, len=4096),
         event(pid="{pid}", comm="{comm}", dev="{dev}", rwbs="WS", sector="{write_sector}", len=65536)],
        modules="loop"),
    # -i 2: the counters are cleared every round, and the seven requests take milliseconds
    row("tool/biopattern", None, "ecli run -j -i 2 biopattern", block_io,
        [event(map="counters", key="{dev}", **{"value.random": 4, "value.sequential": 3, "value.count": 7})],
        modules="loop"),
    row("tool/bitesize", None, "ecli run -j -i 0.5 bitesize -c kmxio{token}", block_io,
        [_counted({"map": "hists", "key.comm": "{comm}"}, slots="2:4,4:2,6:1")], modules="loop"),
    # --container: filter_cgroup_map set, so the verifier keeps the container filter's code (folded away
    # without it); the guest runs no container, so every event is dropped: loading is the check
    row("tool/biolatency-container", None, "ecli run -j --container kmx-none biolatency", block_io,
        [said("attached; Ctrl-C to stop")], modules="loop"),
    row("tool/biosnoop-container", None, "ecli run -j --container kmx-none biosnoop", block_io,
        [said("attached; Ctrl-C to stop")], modules="loop"),
    row("tool/biopattern-container", None, "ecli run -j --container kmx-none biopattern", block_io,
        [said("attached; Ctrl-C to stop")], modules="loop"),
    row("tool/bitesize-container", None, "ecli run -j --container kmx-none bitesize", block_io,
        [said("attached; Ctrl-C to stop")], modules="loop"),
    row("tool/hardirqs", None, "ecli run -j -i 0.5 hardirqs -C", serial_irq,
        [event(map="infos", **{"key.name": "{irq}"})]),
    row("tool/softirqs", None, "ecli run -j -i 5 softirqs", udp_datagrams,
        [_counted({"map": "stats", "key": NET_RX}, path="value.count", total=DATAGRAMS, at_least=True)]),
)
