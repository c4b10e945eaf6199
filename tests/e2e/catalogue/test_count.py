"""The catalogue's count tools (syscount, tcpretrans, tcpdrop, oomkill,
drsnoop) against real activity: exact syscall counts of a child, real SYN
retransmissions and drops on loopback, a real OOM kill and real reclaim in a
cgroup v1 memory controller with a small limit.

Bench loads (events per second generators), one per tool:
  syscount   - a process calling getppid() in a loop (one count per call, ~1 M/s per core)
  tcpretrans - many nonblocking connects to a loopback listener whose accept queue is full
               (listen(0) with one unaccepted connection): each SYN is retransmitted after 1 s, 3 s, ...
  tcpdrop    - connects on loopback to a port nobody listens on (one SYN dropped, NO_SOCKET, per connect)
  oomkill    - children that allocate past a 32 MiB memory cgroup limit (one kill each, ~10/s)
  drsnoop    - readers of a cold file in a 16 MiB memory cgroup (one memcg reclaim per ~41 pages charged)
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ..helpers import Running, running

pytestmark = pytest.mark.usefixtures("kernel")

ARCH_SYSCALLS = {"x86_64": {"getppid": 110, "kill": 62}, "aarch64": {"getppid": 173, "kill": 129}}
SYSCALLS = ARCH_SYSCALLS[os.uname().machine]
GETPPIDS = 37
KILLS = 5
ESRCH = 3
MEMCG_V1 = Path("/sys/fs/cgroup/memory")

SYSCALL_CHILD = f"""
import os, sys
sys.stdin.readline()
for _ in range({GETPPIDS}):
    os.getppid()
for _ in range({KILLS}):
    try:
        os.kill(0x3ffffff0, 0)  # no such process: ESRCH
    except OSError:
        pass
"""


class Child:
    """A Python child that runs `code` once told to (it waits on stdin)."""

    def __init__(self, code: str):
        self.proc = subprocess.Popen([sys.executable, "-c", "print(flush=True)\n" + code],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # it has exec'd: its comm is its own, not ours
        self.comm = Path(f"/proc/{self.pid}/comm").read_text().strip()

    def go(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        return self.proc.wait(60)


def results(tool: Running) -> list[dict[str, Any]]:
    """Stop the tool with Ctrl-C; every JSON line it printed after that (maps at exit)."""
    assert tool.stop() == 0, tool.stderr_lines
    return [json.loads(line) for line in tool.rest()]


def entries(lines: list[dict[str, Any]], name: str) -> dict[Any, Any]:
    """A map's entries printed at exit, key -> value (a table cut at its top
    rows also prints {"map": NAME, "omitted": N}: not an entry)."""
    return {json.dumps(e["key"]) if isinstance(e["key"], dict) else e["key"]: e["value"]
            for e in lines if e.get("map") == name and "key" in e}


# -- syscount ------------------------------------------------------------------

def syscount(*args: str) -> tuple[dict[Any, Any], dict[Any, Any], Child]:
    child = Child(SYSCALL_CHILD)
    with running("ecli", "run", "-j", "syscount", "-p", str(child.pid), *args) as tool:
        for _ in range(11):
            os.getppid()  # ours: -p must leave them out
        assert child.go() == 0
        lines = results(tool)
    return entries(lines, "syscalls"), entries(lines, "processes"), child


def test_syscount_counts_each_syscall_of_one_process() -> None:
    calls, procs, _child = syscount()
    assert calls[SYSCALLS["getppid"]]["count"] == GETPPIDS
    assert calls[SYSCALLS["kill"]]["count"] == KILLS
    assert calls[SYSCALLS["getppid"]]["total_ns"] == 0  # latency only with -L
    assert procs == {}


def test_syscount_failures_errno_and_latency() -> None:
    failed, _, _ = syscount("-x")
    assert failed[SYSCALLS["kill"]]["count"] == KILLS
    assert SYSCALLS["getppid"] not in failed
    by_errno, _, _ = syscount("-e", str(ESRCH))
    assert by_errno == {SYSCALLS["kill"]: {"count": KILLS, "total_ns": by_errno[SYSCALLS["kill"]]["total_ns"]}}
    timed, _, _ = syscount("-L")
    assert timed[SYSCALLS["getppid"]]["count"] == GETPPIDS
    assert timed[SYSCALLS["getppid"]]["total_ns"] > 0


def test_syscount_per_process() -> None:
    calls, procs, child = syscount("-P", "-x")
    assert calls == {}
    assert procs == {child.pid: {"count": KILLS, "total_ns": 0, "comm": child.comm}}


def test_syscount_milliseconds_top_interval_and_duration() -> None:
    """libbpf-tools' spellings: -m (the latency column in ms), -T TOP (rows
    shown), -i and -d after the package (the runner's interval and duration)."""
    child = Child(SYSCALL_CHILD)
    with running("ecli", "run", "syscount", "-p", str(child.pid), "-L", "-m", "-T", "1", "-i", "1", "-d", "3") as tool:
        assert child.go() == 0
        assert tool.proc.wait(20) == 0  # -d: it stopped by itself
        lines = [line.rstrip("\n") for line in tool.rest()]
    blocks = [lines[i:i + 3] for i, line in enumerate(lines) if line == "SYSCALL COUNT TIME (ms)"]
    assert len(blocks) >= 2  # every -i round (one at least in 3 s) and the one at exit
    name, count, ms = blocks[-1][1].split()
    assert (name, count, len(ms.split(".")[1])) == ("getppid", str(GETPPIDS), 3)
    assert blocks[-1][2].startswith("(the top 1 of ") and blocks[-1][2].endswith(" rows)")  # -T 1 cut it


# -- tcpretrans ------------------------------------------------------------------

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
LOOPBACK_BYTES = {socket.AF_INET: [127, 0, 0, 1], socket.AF_INET6: [0] * 15 + [1]}


def address(e: dict[str, Any], key: str) -> list[int]:
    """An address member as the family uses it: IPv4 in the first 4 of 16 bytes."""
    return list(e[key][:4] if e["af"] == socket.AF_INET else e[key])


@contextmanager
def unanswered_syn(family: int) -> Iterator[tuple[int, int]]:
    """A loopback connect whose SYN the listener drops (its accept queue is
    full: listen(0) and one connection not accepted), so the client
    retransmits it after 1 s: (client port, server port)."""
    host = LOOPBACK[family]
    server = socket.socket(family)
    server.bind((host, 0))
    server.listen(0)
    port = server.getsockname()[1]
    first = socket.create_connection((host, port))
    # the first connection must be in the accept queue before the next SYN comes: on loopback its
    # last ACK may still wait in a softirq (a 5.10 guest raced past it once)
    assert select.select([server], [], [], 10)[0], "the first connection never reached the accept queue"
    client = socket.socket(family)
    client.setblocking(False)
    try:
        client.connect_ex((host, port))
        yield client.getsockname()[1], port
    finally:
        client.close()
        first.close()
        server.close()


def is_flow(e: dict[str, Any], lport: int, dport: int) -> bool:
    return e.get("lport") == lport and e.get("dport") == dport


def test_tcpretrans_syn_retransmits_and_counts() -> None:
    with running("ecli", "run", "-j", "tcpretrans") as events, \
            running("ecli", "run", "-j", "tcpretrans", "-c") as counts, \
            running("ecli", "run", "-j", "tcpretrans", "-6") as ipv6:
        with unanswered_syn(socket.AF_INET) as (lport, dport), unanswered_syn(socket.AF_INET6) as (lport6, dport6):
            found = events.json_events(lambda e: is_flow(e, lport, dport) or is_flow(e, lport6, dport6),
                                       count=2, timeout=5)
            (e6,) = ipv6.json_events(lambda e: is_flow(e, lport6, dport6), timeout=5)
        time.sleep(0.3)  # the sockets are closed: no more retransmits of them
        rest = [json.loads(line) for line in events.rest()] if events.stop() == 0 else []
        counted = results(counts)
        v6_rest = results(ipv6)
    by_family = {e["af"]: e for e in found}
    assert set(by_family) == {socket.AF_INET, socket.AF_INET6}  # one of each, not two of one
    e = by_family[socket.AF_INET]
    assert is_flow(e, lport, dport) and is_flow(by_family[socket.AF_INET6], lport6, dport6)
    for x in (e, by_family[socket.AF_INET6], e6):
        family = x["af"]
        assert (address(x, "saddr"), address(x, "daddr")) == (LOOPBACK_BYTES[family], LOOPBACK_BYTES[family])
        assert x["state"] == 2  # TCP_SYN_SENT
    for flow, family in (((lport, dport), socket.AF_INET), ((lport6, dport6), socket.AF_INET6)):
        seen = sum(is_flow(x, *flow) for x in (*found, *rest))
        flows = [x for x in counted if x.get("map") == "flows" and (x["key"]["lport"], x["key"]["dport"]) == flow]
        assert [(f["key"]["af"], address(f["key"], "saddr"), f["value"]) for f in flows] == \
            [(family, LOOPBACK_BYTES[family], seen)]
    assert not any(x.get("lport") == lport for x in v6_rest)  # -6: IPv4 left out


# -- tcpdrop ---------------------------------------------------------------------

def kernel_enum(name: str) -> int:
    """An enumerator's value in this kernel's BTF (drop reasons move between kernels)."""
    out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(rf"'{name}' val=(\d+)", out)
    assert m is not None, name
    return int(m.group(1))


def symbol_at(address: int) -> str:
    """The kernel function containing `address`, from /proc/kallsyms."""
    best, name = 0, ""
    for line in Path("/proc/kallsyms").read_text().splitlines():
        addr, kind, sym = line.split()[:3]
        a = int(addr, 16)
        if kind in "tT" and best < a <= address:
            best, name = a, sym
    return name


def refused(family: int) -> tuple[int, int]:
    """A connect on loopback to a port nobody listens on: (client port, that port)."""
    host = LOOPBACK[family]
    closed = socket.socket(family)
    closed.bind((host, 0))
    dport = closed.getsockname()[1]
    closed.close()
    client = socket.socket(family)
    client.bind((host, 0))
    sport = client.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        client.connect((host, dport))
    client.close()
    return sport, dport


def test_tcpdrop_syn_to_a_closed_port() -> None:
    with running("ecli", "run", "-j", "tcpdrop") as tool, running("ecli", "run", "-j", "tcpdrop", "-6") as ipv6:
        sport, dport = refused(socket.AF_INET)
        sport6, dport6 = refused(socket.AF_INET6)
        found = tool.json_events(lambda e: (e["sport"], e["dport"]) in ((sport, dport), (sport6, dport6)),
                                 count=2, timeout=5)
        (e6,) = ipv6.json_events(lambda e: (e["sport"], e["dport"]) == (sport6, dport6), timeout=5)
        v6 = results(ipv6)
    assert [x["af"] for x in found] == [socket.AF_INET, socket.AF_INET6]
    no_socket = kernel_enum("SKB_DROP_REASON_NO_SOCKET")
    for e, rcv in ((found[0], "tcp_v4_rcv"), (found[1], "tcp_v6_rcv"), (e6, "tcp_v6_rcv")):
        family = e["af"]
        assert (address(e, "saddr"), address(e, "daddr")) == (LOOPBACK_BYTES[family], LOOPBACK_BYTES[family])
        assert e["tcpflags"] == 2  # SYN
        assert (e["has_sk"], e["state"]) == (0, 0)  # no socket owned it
        assert e["pid"] == os.getpid()  # loopback delivers in the sender's context
        assert e["reason"] == no_socket
        assert e["reason_text"] == "NO_SOCKET"  # kernel_enum: the name from this kernel's BTF, prefix cut
        assert symbol_at(e["location"]) == rcv
    assert not any(x.get("sport") == sport for x in v6)  # -6: IPv4 left out


# -- oomkill and drsnoop: a cgroup v1 memory controller ---------------------------------

@contextmanager
def memcg(limit: int) -> Iterator[Path]:
    if not MEMCG_V1.is_dir():
        pytest.skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
    path = MEMCG_V1 / f"pyeu-count-{os.getpid()}"
    path.mkdir()
    try:
        (path / "memory.limit_in_bytes").write_text(str(limit))
        yield path
    finally:
        for _ in range(50):
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.1)  # the killed child's memory is still being uncharged


def test_oomkill_in_a_small_memory_cgroup() -> None:
    with memcg(32 << 20) as cg, running("ecli", "run", "-j", "oomkill") as tool:
        child = Child("import sys; sys.stdin.readline(); b = b'x' * (256 << 20)")
        (cg / "cgroup.procs").write_text(str(child.pid))
        assert child.go() == -9  # SIGKILL
        (e,) = tool.json_events(lambda e: e["kpid"] == child.pid, timeout=5)
    assert (e["tpid"], e["tcomm"], e["kcomm"]) == (child.pid, child.comm, child.comm)
    if e["has_details"]:  # 6.8+: the victim's sizes and uid
        assert e["uid"] == os.getuid()
        assert e["total_vm_kb"] > 256 << 10 and e["anon_rss_kb"] > 0


def test_drsnoop_memcg_reclaim_of_page_cache(tmp_path: Path) -> None:
    cold = tmp_path / "cold"
    with cold.open("wb") as f:
        f.write(os.urandom(1 << 20) * 48)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # not cached: the child's reads charge it
    reader = f"import os, sys\nsys.stdin.readline()\nfd = os.open({str(cold)!r}, os.O_RDONLY)\n" \
             "while os.read(fd, 1 << 20):\n    pass\n"
    with memcg(16 << 20) as cg:
        child = Child(reader)
        with running("ecli", "run", "-j", "drsnoop", "-p", str(child.pid)) as tool, \
                running("ecli", "run", "-j", "drsnoop", "-p", str(os.getpid())) as ours:
            (cg / "cgroup.procs").write_text(str(child.pid))
            assert child.go() == 0
            (e,) = tool.json_events(lambda e: True, timeout=5)
            rest = results(tool)
            others = results(ours)
    for x in (e, *rest):
        assert (x["pid"], x["tid"], x["comm"], x["memcg"]) == (child.pid, child.pid, child.comm, 1)
        assert x["delta_ns"] > 0
    assert sum(x["nr_reclaimed"] for x in (e, *rest)) > 0  # a round may free nothing, not all of them
    assert others == []  # -p: our own process reclaimed nothing


def test_drsnoop_d_is_the_duration() -> None:
    """-d DURATION after the package, libbpf-tools' spelling of the runner's -d: it stops by itself."""
    with running("ecli", "run", "drsnoop", "-d", "1", "-p", str(os.getpid())) as tool:
        assert tool.proc.wait(15) == 0, tool.stderr_lines  # not signalled: its duration ended it
        assert [line.split() for line in tool.rest()] == [["COMM", "PID", "LAT(ms)", "PAGES", "KIND"]]
