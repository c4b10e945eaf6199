"""The network tools (tcpconnect, tcpaccept, tcplife, tcpstates, tcpconnlat,
bindsnoop) against real sockets on loopback, IPv4 and IPv6: exact pids, comms,
raw addresses, ports, states, byte counts and errnos in their -j events.

Each test starts a child under a unique name that does its socket work when
told to, and a second child (another pid, other ports) that does the same
first: the filter under test must keep its events out.

Bench loads (events per second generators), one per tool:
Measured (2026-12-02, 2-core VM, load average ~7 from other work): 3,000
loopback connects in a loop, each tool running with -j: every tool reported
all 3,000 (tcpstates -D: 9,000, three changes of each client socket), none
lost. Per-connect times were too noisy under that load to quote.

- tcpconnect, tcpaccept, tcpconnlat, tcplife, tcpstates: a client connecting
  to a loopback listener in a loop (connect, accept, close both), N per
  second: one event each per connection (tcpstates: about 9, both ends).
- bindsnoop: a loop of socket(); bind(127.0.0.1, 0); close(), N per second.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from ..helpers import Running, command, running, temp_dir
from .cgroups import new_cgroup

pytestmark = pytest.mark.usefixtures("kernel")

LOOPBACK = {4: "127.0.0.1", 6: "::1"}
AF = {4: 2, 6: 10}
RAW = {4: [127, 0, 0, 1] + [0] * 12, 6: [0] * 15 + [1]}  # the events' 16-byte address fields
NOBODY = 65534
SENT, ANSWERED = 1000, 3000  # bytes the client sends, and the server answers

CHILD = r"""
import encodings.idna, json, os, socket, sys  # idna: create_connection imports it, later unreadable
if len(sys.argv) > 2:  # drop to this uid: the interpreter itself may sit where that user cannot read
    os.setresuid(int(sys.argv[2]), int(sys.argv[2]), int(sys.argv[2]))
FAM = {4: (socket.AF_INET, "127.0.0.1"), 6: (socket.AF_INET6, "::1")}
ops = json.loads(sys.argv[1])
sys.stdin.readline()  # wait until the tracer is ready
out = []
for op in ops:
    fam, host = FAM[op[1]]
    if op[0] == "session":  # listen on op[2], connect, talk, close: client first, server after its EOF
        s = socket.socket(fam)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, op[2]))
        s.listen()
        c = socket.create_connection((host, op[2]))
        a, _ = s.accept()
        c.sendall(b"x" * 1000)
        got = 0
        while got < 1000:
            got += len(a.recv(4096))
        a.sendall(b"y" * 3000)
        got = 0
        while got < 3000:
            got += len(c.recv(4096))
        cport, fd = c.getsockname()[1], a.fileno()
        c.close()
        while a.recv(4096):
            pass
        a.close()
        s.close()
        out.append({"cport": cport, "fd": fd})
    elif op[0] == "bind":  # ["bind", family, "tcp"|"udp", port, [[level, option], ...]]
        s = socket.socket(fam, socket.SOCK_STREAM if op[2] == "tcp" else socket.SOCK_DGRAM)
        for level, opt in op[4]:
            s.setsockopt(level, opt, 1)
        try:
            s.bind((host, op[3]))
            out.append({"fd": s.fileno(), "ret": 0})
        except OSError as e:
            out.append({"fd": s.fileno(), "ret": -e.errno})
        globals().setdefault("keep", []).append(s)  # a later bind must find the port taken
print(json.dumps(out), flush=True)
"""


class Child:
    """A Python process under a unique name that works sockets when told to."""

    def __init__(self, tmp: Path, ops: list[list[Any]], tag: str, uid: int | None = None):
        self.name = f"pyeu{tag}{os.getpid() % 1000}{int(time.monotonic() * 1000) % 10000}"[:15]
        link = tmp / self.name
        link.symlink_to(os.path.realpath(sys.executable))
        argv = [str(link), "-c", CHILD, json.dumps(ops)] + ([] if uid is None else [str(uid)])
        self.proc = subprocess.Popen(argv,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def go(self) -> list[dict[str, Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        results: list[dict[str, Any]] = json.loads(self.proc.stdout.readline())
        assert self.proc.wait(10) == 0
        return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pair(ops_a: list[list[Any]], ops_b: list[list[Any]]) -> tuple[Child, Child]:
    tmp = temp_dir()
    return Child(tmp, ops_a, "a"), Child(tmp, ops_b, "b")


def events_until(tool: Running, pid: int, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Every event up to the count-th one of `pid` (the other child's come before, if at all)."""
    seen: list[dict[str, Any]] = []

    def match(line: str) -> bool:
        seen.append(json.loads(line))
        return sum(1 for e in seen if e.get("pid") == pid) >= count
    tool.wait_for(match, timeout)
    return seen


def assert_ends(event: dict[str, Any], family: int, **fields: Any) -> None:
    assert event["af"] == AF[family]
    for key, value in fields.items():
        assert event[key] == value, (key, event)


@pytest.mark.parametrize("family", [4, 6])
def test_tcpconnect_pid_filter(family: int) -> None:
    port_a, port_b = free_port(), free_port()
    a, b = pair([["session", family, port_a]], [["session", family, port_b]])
    with running("ecli", "run", "-j", "tcpconnect", "-p", str(a.pid)) as tool:
        b.go()
        a.go()
        seen = events_until(tool, a.pid, 1)
    assert [e["pid"] for e in seen] == [a.pid]
    e = seen[0]
    assert_ends(e, family, comm=a.name, uid=0, saddr=RAW[family], daddr=RAW[family], dport=port_a)


def test_tcpconnect_uid_filter() -> None:
    """-u: a child running as nobody (65534) is seen with its uid, the root one is not."""
    port_a, port_b = free_port(), free_port()
    tmp = temp_dir()
    a = Child(tmp, [["session", 4, port_a]], "a", uid=NOBODY)
    b = Child(tmp, [["session", 4, port_b]], "b")
    with running("ecli", "run", "-j", "tcpconnect", "-u", str(NOBODY)) as tool:
        b.go()
        a.go()
        seen = events_until(tool, a.pid, 1)
    assert [(e["pid"], e["uid"], e["dport"]) for e in seen] == [(a.pid, NOBODY, port_a)]


def test_tcpconnect_ports_count() -> None:
    """-c counts in the kernel per (saddr, daddr, dport): printed at exit; -P keeps port_b out."""
    port_a, port_b = free_port(), free_port()
    a, b = pair([["session", 4, port_a], ["session", 6, port_a], ["session", 6, port_a]],
                [["session", 4, port_b]])
    with running("ecli", "run", "-j", "tcpconnect", "-c", "-P", f"1,{port_a},2") as tool:
        b.go()
        a.go()
        time.sleep(0.3)
        assert tool.stop() == 0
        lines = [json.loads(line) for line in tool.rest()]
    counts = {(e["key"]["af"], e["key"]["dport"], tuple(e["key"]["daddr"])): e["value"]
              for e in lines if e.get("map") == "counts"}
    assert counts == {(2, port_a, tuple(RAW[4])): 1, (10, port_a, tuple(RAW[6])): 2}


@pytest.mark.parametrize("family", [4, 6])
def test_tcpaccept(family: int) -> None:
    port_a, port_b = free_port(), free_port()
    a, b = pair([["session", family, port_a]], [["session", family, port_b]])
    with running("ecli", "run", "-j", "tcpaccept", "-p", str(a.pid)) as tool:
        b.go()
        (done,) = a.go()
        seen = events_until(tool, a.pid, 1)
    assert [e["pid"] for e in seen] == [a.pid]
    assert_ends(seen[0], family, comm=a.name, saddr=RAW[family], sport=port_a, daddr=RAW[family],
                dport=done["cport"], fd=done["fd"])


def test_tcpaccept_port_filter() -> None:
    port_a, port_b = free_port(), free_port()
    a, b = pair([["session", 6, port_a]], [["session", 6, port_b]])
    with running("ecli", "run", "-j", "tcpaccept", "-P", str(port_a), "-6") as tool:
        b.go()
        a.go()
        seen = events_until(tool, a.pid, 1)
    assert [(e["pid"], e["sport"]) for e in seen] == [(a.pid, port_a)]


@pytest.mark.parametrize("family", [4, 6])
def test_tcplife(family: int) -> None:
    """Both ends of one session, opened and closed by the child: exact byte counts.
    bytes_acked counts the SYN and FIN sequence numbers too: the client (SYN
    and FIN acked) 1000 + 2, the server (FIN acked; its SYN-ACK is not
    counted) 3000 + 1; bytes_received counts the peer's FIN."""
    port_a, port_b = free_port(), free_port()
    a, b = pair([["session", family, port_a]], [["session", family, port_b]])
    with running("ecli", "run", "-j", "tcplife", "-p", str(a.pid)) as tool:
        b.go()
        (done,) = a.go()
        seen = events_until(tool, a.pid, 2)
    assert [e["pid"] for e in seen] == [a.pid, a.pid]
    client, server = sorted(seen, key=lambda e: e["dport"] != port_a)
    assert_ends(client, family, comm=a.name, saddr=RAW[family], sport=done["cport"], daddr=RAW[family],
                dport=port_a, tx_b=SENT + 2, rx_b=ANSWERED + 1)
    assert_ends(server, family, comm=a.name, saddr=RAW[family], sport=port_a, daddr=RAW[family],
                dport=done["cport"], tx_b=ANSWERED + 1, rx_b=SENT + 1)
    assert all(0 < e["span_us"] < 10_000_000 for e in seen)


def test_tcplife_remote_port() -> None:
    port_a, port_b = free_port(), free_port()
    a, b = pair([["session", 4, port_a]], [["session", 4, port_b]])
    others = [p for p in range(1, 17) if p not in (port_a, port_b)][:15]
    # port_a last of the 16 the __u16 targ_dports[16] holds: every element is read, none is port_b
    with running("ecli", "run", "-j", "tcplife", "-D", ",".join(map(str, [*others, port_a])), "-4") as tool:
        b.go()
        a.go()
        seen = events_until(tool, a.pid, 1)
    assert [(e["pid"], e["dport"], e["tx_b"]) for e in seen] == [(a.pid, port_a, SENT + 2)]
    done = subprocess.run([*command("ecli"), "run", "tcplife", "-D", ",".join(map(str, range(1, 18)))],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("ecli: error: argument -D/--remoteport/--targ_dports: 17 values, and it holds at most "
                           "16 (see 'ecli run tcplife --help')\n")


TCP_ESTABLISHED, TCP_SYN_SENT, TCP_SYN_RECV, TCP_CLOSE_WAIT, TCP_LAST_ACK = 1, 2, 3, 8, 9
TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_TIME_WAIT, TCP_CLOSE, TCP_LISTEN = 4, 5, 6, 7, 10


@pytest.mark.parametrize("family", [4, 6])
def test_tcpstates(family: int) -> None:
    """-L and -4/-6: the listener's and the accepted socket's changes, in order,
    with the time in the previous state; the client's socket (another local
    port) and the other child's session (same port, the other family) are left out."""
    port_a = free_port()
    a, b = pair([["session", family, port_a]], [["session", 10 - family, port_a]])
    with running("ecli", "run", "-j", "tcpstates", "-L", str(port_a), f"-{family}") as tool:
        b.go()
        (done,) = a.go()
        lines = tool.wait_for(  # up to the listener's close, the child's last step
            lambda line: json.loads(line)["newstate"] == TCP_CLOSE and json.loads(line)["dport"] == 0)
    seen = [json.loads(line) for line in lines]
    assert {(e["sport"], e["af"]) for e in seen} == {(port_a, AF[family])}
    by_sock: dict[int, list[dict[str, Any]]] = {}
    for e in seen:
        by_sock.setdefault(e["skaddr"], []).append(e)
    listener = next(v for v in by_sock.values() if v[0]["newstate"] == TCP_LISTEN)
    accepted = next(v for v in by_sock.values() if v[0]["newstate"] != TCP_LISTEN)
    assert [(e["oldstate"], e["newstate"]) for e in listener] == [(TCP_CLOSE, TCP_LISTEN), (TCP_LISTEN, TCP_CLOSE)]
    assert [(e["oldstate"], e["newstate"]) for e in accepted] == [
        (TCP_LISTEN, TCP_SYN_RECV), (TCP_SYN_RECV, TCP_ESTABLISHED), (TCP_ESTABLISHED, TCP_CLOSE_WAIT),
        (TCP_CLOSE_WAIT, TCP_LAST_ACK), (TCP_LAST_ACK, TCP_CLOSE)]
    assert [e["pid"] for e in listener] == [a.pid, a.pid]  # listen() and close() run in the child
    assert [e["dport"] for e in accepted] == [done["cport"]] * 5
    for e in listener + accepted:
        assert_ends(e, family, saddr=RAW[family])
    assert listener[0]["delta_us"] == 0 and accepted[0]["delta_us"] == 0  # the first change seen
    assert listener[1]["delta_us"] > 0  # the time it listened
    assert accepted[1]["delta_us"] <= accepted[-1]["ts_us"] - accepted[0]["ts_us"]


@pytest.mark.parametrize("family", [4, 6])
def test_tcpconnlat(family: int) -> None:
    port_a, port_b = free_port(), free_port()
    a, b = pair([["session", family, port_a]], [["session", family, port_b]])
    with running("ecli", "run", "-j", "tcpconnlat", "-p", str(a.pid)) as tool:
        b.go()
        (done,) = a.go()
        seen = events_until(tool, a.pid, 1)
    assert [e["pid"] for e in seen] == [a.pid]
    assert_ends(seen[0], family, comm=a.name, saddr=RAW[family], lport=done["cport"], daddr=RAW[family],
                dport=port_a)
    assert 0 < seen[0]["delta_us"] < 10_000_000


def test_tcpconnlat_min() -> None:
    """--min 10s: a loopback connect (well under) is not shown; --min 0 beside it shows it."""
    port_a = free_port()
    a = Child(temp_dir(), [["session", 4, port_a]], "a")
    with running("ecli", "run", "-j", "tcpconnlat", "--min", "10000000") as slow, \
            running("ecli", "run", "-j", "tcpconnlat", "-p", str(a.pid)) as every:
        a.go()
        events_until(every, a.pid, 1)
        time.sleep(0.5)
        assert slow.stop() == 0
        assert not [line for line in slow.rest() if json.loads(line).get("pid") == a.pid]


SOL_SOCKET, SO_REUSEADDR, SO_REUSEPORT = 1, 2, 15
SOL_IP, IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT = 0, 15, 19, 24


def test_bindsnoop() -> None:
    """-x shows failed binds too; without it only successes; -p keeps the other child out.
    OPTS bits: 1 FREEBIND, 2 TRANSPARENT, 4 BIND_ADDRESS_NO_PORT, 8 REUSEADDR,
    16 REUSEPORT; PROTO 6 TCP, 17 UDP."""
    p1, p2 = free_port(), free_port()
    ops = [["bind", 4, "tcp", p1, [[SOL_SOCKET, SO_REUSEADDR], [SOL_SOCKET, SO_REUSEPORT],
                                   [SOL_IP, IP_TRANSPARENT], [SOL_IP, IP_BIND_ADDRESS_NO_PORT]]],
           ["bind", 6, "udp", p2, [[SOL_IP, IP_FREEBIND]]],
           ["bind", 4, "tcp", p1, []]]  # EADDRINUSE: the first holds it without SO_REUSEADDR here
    a, b = pair(ops, [["bind", 4, "tcp", 0, []]])
    with running("ecli", "run", "-j", "bindsnoop", "-x", "-p", str(a.pid)) as failed, \
            running("ecli", "run", "-j", "bindsnoop", "-P", f"{p1},{p2}") as ok:
        b.go()
        results = a.go()
        seen = events_until(failed, a.pid, 3)
        plain = events_until(ok, a.pid, 2)
        assert ok.stop() == 0
        plain += [json.loads(line) for line in ok.rest()]
    assert results[2]["ret"] == -98
    assert [e["pid"] for e in seen] == [a.pid] * 3
    want = [(0, 6, 30, p1, 2, RAW[4]), (0, 17, 1, p2, 10, RAW[6]), (-98, 6, 0, p1, 2, RAW[4])]
    assert [(e["ret"], e["proto"], e["opts"], e["port"], e["af"], e["addr"]) for e in seen] == want
    assert [e["fd"] for e in seen] == [r["fd"] for r in results]
    assert all(e["comm"] == a.name and e["bound_dev_if"] == 0 for e in seen)
    assert [(e["pid"], e["ret"], e["port"]) for e in plain] == [(a.pid, 0, p1), (a.pid, 0, p2)]


def cgroup() -> AbstractContextManager[Path]:
    return new_cgroup("pyeunomia-net")


@pytest.mark.parametrize(("tool", "option"), [("tcpconnect", "--cgroup"), ("bindsnoop", "-c")])
def test_cgroup_filter(tool: str, option: str) -> None:
    """Only the child moved into the cgroup is seen: the other one (in the test's own) is not."""
    port_a, port_b = free_port(), free_port()
    with cgroup() as group:
        a, b = pair([["session", 4, port_a]], [["session", 4, port_b]])
        (group / "cgroup.procs").write_text(str(a.pid))
        with running("ecli", "run", "-j", tool, option, str(group)) as snoop:
            b.go()
            a.go()
            seen = events_until(snoop, a.pid, 1)
    key = "dport" if tool == "tcpconnect" else "port"
    assert [(e["pid"], e[key]) for e in seen] == [(a.pid, port_a)]
