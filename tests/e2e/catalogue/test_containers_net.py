"""The network tools name containers and filter by them in the kernel: each
runs with `--containers -j --container NAME` while a real podman container
(tests/e2e/containerenv.py's busybox image, host network) and this test on
the host do the same socket work; only the container's events may show, with
its cgroup id, runtime and name.

The container runs a loop that executes the script the test writes to its
/cmd (through /proc/PID/root) each time a /go file appears. busybox's `nc`
connects (then shuts its sending half on stdin's EOF and exits on the
peer's), listens (bind, accept), or gives up a connect after 2 s.

The state changes, retransmits and drops fire in softirq, where the current
task is whoever was interrupted: on loopback, the sender of the packet (the
container's nc processes the host listener's SYN_RECV; this test's send runs
the container socket's drop). The tools take the socket's cgroup there, and
these tests fail if they took the current task's.

tcpdrop's case needs a socket shut for reading (shutdown(SHUT_RDWR)), which
busybox cannot do: a Python child of the test is moved into the container's
cgroup before it makes its socket, so the socket belongs to the container.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.decoders.cgroup import cgroup2_root

from ...conftest import require
from ..containerenv import PODMAN_RUN, cgroup_id_of, image, sh
from ..helpers import Running, command

pytestmark = pytest.mark.usefixtures("kernel")

LOOP = ("while :; do if [ -e /go ]; then /bin/busybox rm /go; /bin/busybox sh /cmd >/out 2>&1; "
        "echo done > /done; fi; /bin/busybox sleep 0.05; done")
LO = [127, 0, 0, 1] + [0] * 12
CLOSE, SYN_SENT, ESTABLISHED, FIN_WAIT1, FIN_WAIT2 = 7, 2, 1, 4, 5


class Box:
    """A podman container running LOOP; `run` has it execute a script."""

    def __init__(self, image_name: str):
        self.name = f"pyeu-net-{os.getpid() % 100000}"
        sh("podman", "run", "-d", *PODMAN_RUN, "--name", self.name, image_name, "/bin/busybox", "sh", "-c", LOOP)
        self.pid = int(sh("podman", "inspect", "-f", "{{.State.Pid}}", self.name).stdout)
        self.cgroup_id = cgroup_id_of(self.pid)
        self.root = Path(f"/proc/{self.pid}/root")

    def run(self, script: str) -> None:
        """Start one run of `script` (busybox sh); `wait` waits for its end."""
        (self.root / "done").unlink(missing_ok=True)
        (self.root / "cmd").write_text(script + "\n")
        (self.root / "go").write_text("1")

    def wait(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not (self.root / "done").exists():
            assert time.monotonic() < deadline, f"the container's script did not finish: {self.output()}"
            time.sleep(0.02)

    def output(self) -> str:
        try:
            return (self.root / "out").read_text()
        except OSError:
            return ""

    def cgroup_dir(self) -> Path:
        with open(f"/proc/{self.pid}/cgroup") as f:
            rel = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
        root = cgroup2_root()
        assert root is not None
        return Path(root + rel)

    def remove(self) -> None:
        sh("podman", "rm", "-f", "-t", "0", self.name, check=False)


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    for name in ("podman", "runc"):
        require(shutil.which(name) is not None, f"{name} is not installed (make test installs it)")
    require(os.geteuid() == 0, "containers need root")
    image_name, _ = image()
    b = None
    try:
        b = Box(image_name)
        yield b
    finally:
        if b is not None:
            b.remove()
        else:
            sh("podman", "rm", "-f", "-t", "0", f"pyeu-net-{os.getpid() % 100000}", check=False)


class Listener:
    """A loopback TCP listener that accepts, reads to EOF, then closes (so the
    client's FIN always comes first); `backlog_full` leaves one connection
    unaccepted on listen(0) instead, so every later SYN goes unanswered."""

    def __init__(self, backlog_full: bool = False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.keep: list[socket.socket] = []
        if backlog_full:
            self.sock.listen(0)
            self.keep.append(socket.create_connection(("127.0.0.1", self.port)))
            time.sleep(0.1)  # its last ACK reaches the accept queue before any other SYN
        else:
            self.sock.listen(16)
            threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            while conn.recv(4096):
                pass
            conn.close()

    def close(self) -> None:
        for s in [self.sock, *self.keep]:
            s.close()


def host_session(port: int) -> int:
    """What the container's `nc` does, from the host: connect, shut the
    sending half, read to EOF, close; returns the local port."""
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.shutdown(socket.SHUT_WR)
        while c.recv(4096):
            pass
        local: int = c.getsockname()[1]
        return local


def tool(name: str, box: Box, *args: str) -> Running:
    return Running([*command("ecli"), "run", "-j", "--containers", "--container", box.name, name, *args],
                   "attached")


def collect(run: Running, last: Callable[[dict[str, Any]], bool], after: Callable[[], None] = lambda: None,
            timeout: float = 10) -> list[dict[str, Any]]:
    """Every event up to the one `last` matches, and any the tool printed
    until it stopped (after `after` ran): map dumps at exit left out."""
    try:
        lines = run.wait_for(lambda line: last(json.loads(line)), timeout)
        after()
        assert run.stop() == 0
        lines += run.rest()
    finally:
        run.stop()
    return [e for e in map(json.loads, lines) if "map" not in e]


def assert_named(events: list[dict[str, Any]], box: Box) -> None:
    for e in events:
        assert (e["cgroup_id"], e["container_runtime"], e["container"], e["pod"], e["k8s_namespace"]) == \
            (box.cgroup_id, "podman", box.name, "", ""), e


@pytest.mark.parametrize("name", ["tcpconnect", "tcpconnlat", "tcplife", "tcpstates"])
def test_connect_from_a_container(box: Box, name: str) -> None:
    """The container's nc connects to a host listener; this test makes the
    same session from the host first. Only the container's socket shows:
    not the host's client, nor the host's accepted socket (whose SYN_RECV
    runs in nc's context)."""
    listener = Listener()
    run = tool(name, box)
    try:
        host_port = host_session(listener.port)
        box.run(f"/bin/busybox nc 127.0.0.1 {listener.port} </dev/null")
        final = (lambda e: e["newstate"] == CLOSE) if name == "tcpstates" else (lambda e: True)
        seen = collect(run, final, after=box.wait)
    finally:
        listener.close()
    assert_named(seen, box)
    assert all(e["dport"] == listener.port and e["daddr"] == LO for e in seen), seen
    if name == "tcpstates":
        assert len({e["skaddr"] for e in seen}) == 1  # one socket: nc's
        assert [(e["oldstate"], e["newstate"]) for e in seen] == [
            (CLOSE, SYN_SENT), (SYN_SENT, ESTABLISHED), (ESTABLISHED, FIN_WAIT1), (FIN_WAIT1, FIN_WAIT2),
            (FIN_WAIT2, CLOSE)]
        port = seen[-1]["sport"]
    else:
        (e,) = seen
        assert e["comm"] == "busybox"
        port = e["lport"] if name == "tcpconnlat" else e["sport"] if name == "tcplife" else None
        if name == "tcplife":
            assert (e["tx_b"], e["rx_b"]) == (2, 1)  # no data: its SYN and FIN acked, the peer's FIN
    assert port != host_port  # tcpconnect has no source port: its one event, of the container's cgroup, says it


@pytest.mark.parametrize("name", ["tcpaccept", "bindsnoop"])
def test_listen_in_a_container(box: Box, name: str) -> None:
    """The container's `nc -l -p PORT` binds and accepts this test's
    connection; the test binds and accepts on the host too, unseen."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tool(name, box)
    try:
        host = Listener()  # bind and listen on the host, and accept one connection
        host_port = host_session(host.port)
        host.close()
        box.run(f"/bin/busybox nc -l -p {port} </dev/null")
        deadline = time.monotonic() + 10
        while True:
            try:
                client_port = host_session(port)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, box.output()
                time.sleep(0.05)
        seen = collect(run, lambda e: True, after=box.wait)
    finally:
        run.stop()
    assert_named(seen, box)
    (e,) = seen
    assert e["comm"] == "busybox"
    if name == "bindsnoop":
        assert (e["port"], e["ret"], e["proto"]) == (port, 0, 6)
        assert e["addr"] == [0] * 16
    else:
        assert (e["sport"], e["dport"]) == (port, client_port)
        assert e["dport"] != host_port


def test_tcpretrans_of_a_container_socket(box: Box) -> None:
    """Both the host and the container send a SYN to a listener whose
    accept queue is full; the retransmit timer (softirq, 1 s later) resends
    each. Only the container's shows; nc gives up at 2 s, before the second.
    -c counts it, alone, in the kernel's map."""
    listener = Listener(backlog_full=True)
    host = socket.socket()
    host.setblocking(False)
    run, counts = tool("tcpretrans", box), tool("tcpretrans", box, "-c")
    try:
        host.connect_ex(("127.0.0.1", listener.port))
        host_port = host.getsockname()[1]
        box.run(f"/bin/busybox nc -w 2 127.0.0.1 {listener.port} </dev/null")
        seen = collect(run, lambda e: True, after=box.wait)
        assert counts.stop() == 0
        flows = [e for e in map(json.loads, counts.rest()) if e.get("map") == "flows"]
    finally:
        counts.stop()
        host.close()
        listener.close()
    assert_named(seen, box)
    (e,) = seen
    assert (e["dport"], e["state"], e["daddr"], e["af"]) == (listener.port, SYN_SENT, LO, 2)
    assert e["lport"] != host_port
    assert [(f["key"]["lport"], f["key"]["dport"], f["value"]) for f in flows] == [(e["lport"], listener.port, 1)]


CHILD = r"""
import socket, sys
sys.stdin.readline()
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.shutdown(socket.SHUT_RDWR)
print(c.getsockname()[1], flush=True)
sys.stdin.readline()
"""


def test_tcpdrop_of_a_container_socket(box: Box) -> None:
    """A socket shut for reading that receives data drops it (TCP_ABORT_ON_DATA).
    The drop runs in this test's send, on the host; the socket is the
    container's, and only its drop shows."""
    if tuple(map(int, os.uname().release.split(".")[:2])) < (6, 13):
        pytest.skip("kfree_skb names the receiving socket (rx_sk) from 6.13 on: before, no container is known")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(port)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    run = None
    try:
        (box.cgroup_dir() / "cgroup.procs").write_text(str(child.pid))
        run = tool("tcpdrop", box)
        with socket.create_connection(("127.0.0.1", port)) as ours:  # the host's own, first
            peer, _ = listener.accept()
            ours.shutdown(socket.SHUT_RDWR)
            time.sleep(0.05)
            peer.send(b"x")
            peer.close()
        child.stdin.write("go\n")
        child.stdin.flush()
        child_port = int(child.stdout.readline())
        peer, _ = listener.accept()
        time.sleep(0.05)  # its FIN is in: data after it is what the socket refuses
        peer.send(b"y")
        seen = collect(run, lambda e: True, after=lambda: time.sleep(0.3))
        peer.close()
    finally:
        if run is not None:
            run.stop()
        child.stdin.close()
        child.wait(10)
        listener.close()
    assert_named(seen, box)
    (e,) = seen
    assert (e["sport"], e["dport"], e["has_sk"], e["state"]) == (port, child_port, 1, CLOSE)
    assert e["reason_text"] == "TCP_ABORT_ON_DATA"
    assert e["pid"] == os.getpid()  # the sender's context, not the container's
