"""Kernel-matrix rows of the catalogue's count tools (syscount, tcpretrans,
tcpdrop, oomkill, drsnoop) and the triggers they use.

Standard library only: the triggers run in the guest's Debian python3. The
memory triggers use the guest's cgroup v2 (its /init mounts only that): a
child cgroup with the memory controller and a small memory.max, where a
child that allocates past it reclaims (memcg reclaim: drsnoop) and is then
OOM-killed (oomkill). The guests have no swap and their files live in RAM,
so reclaim frees nothing there (nr_reclaimed 0); it still runs and is traced.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time

from .actions import Ctx, _later
from .checks import event, said
from .matrix import Program, row
from .tools_net import cgroup_id

SYSCALLS_X86_64 = {"getppid": 110, "kill": 62}
GETPPIDS = 37
KILLS = 5
CGROUP2 = "/sys/fs/cgroup"


def getppid_and_kill(ctx: Ctx) -> None:
    """The harness itself (syscount -p {harness_pid}) calls getppid() 37 times
    and kill() on a missing pid 5 times (ESRCH)."""
    for _ in range(GETPPIDS):
        os.getppid()
    for _ in range(KILLS):
        try:
            os.kill(0x3ffffff0, 0)
        except ProcessLookupError:
            pass
    ctx.update(pid=os.getpid(), getppid=SYSCALLS_X86_64["getppid"], kill=SYSCALLS_X86_64["kill"])


def unanswered_syn(ctx: Ctx) -> None:
    """A loopback connect whose SYN the listener drops (accept queue full:
    listen(0) with one connection never accepted); the client retransmits
    it after 1 s. The sockets stay open until the check ends."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    first = socket.create_connection(("127.0.0.1", port))
    # the first connection must be in the accept queue before the next SYN comes: on loopback its
    # last ACK may still wait in a softirq (a 5.10 guest raced past it once)
    assert select.select([server], [], [], 10)[0], "the first connection never reached the accept queue"
    client = socket.socket()
    client.setblocking(False)
    client.connect_ex(("127.0.0.1", port))
    for sock in (server, first, client):
        _later(ctx, sock.close)
    ctx.update(lport=client.getsockname()[1], dport=port, cgid=cgroup_id())


def syn_to_closed_port(ctx: Ctx) -> None:
    """A connect from a known port to a loopback port nobody listens on: the
    SYN is dropped (no socket) and answered with RST."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dport = closed.getsockname()[1]
    closed.close()
    client = socket.socket()
    client.bind(("127.0.0.1", 0))
    sport = client.getsockname()[1]
    try:
        client.connect(("127.0.0.1", dport))
    except ConnectionRefusedError:
        pass
    finally:
        client.close()
    ctx.update(pid=os.getpid(), sport=sport, dport=dport)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def memcg_hog(ctx: Ctx) -> None:
    """A python3 child in a cgroup v2 with memory.max 32 MiB that fills
    256 MiB: it reclaims in its cgroup, then is OOM-killed."""
    cg = f"{CGROUP2}/kmx-mem-{ctx['token']}"
    _write(f"{CGROUP2}/cgroup.subtree_control", "+memory")
    os.mkdir(cg)
    _later(ctx, lambda: _rmdir_later(cg))
    _write(f"{cg}/memory.max", str(32 << 20))
    code = "import sys\nprint(flush=True)\nsys.stdin.readline()\nb = b'x' * (256 << 20)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdout.readline()  # exec'd: its comm is its own
    with open(f"/proc/{proc.pid}/comm") as f:
        comm = f.read().strip()
    _write(f"{cg}/cgroup.procs", str(proc.pid))
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    code_ = proc.wait(60)
    ctx.update(pid=proc.pid, comm=comm, exit_code=code_)


def _rmdir_later(path: str) -> None:
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.1)  # the killed child's memory is still being uncharged


ROWS: tuple[Program, ...] = (
    row("tool/syscount", None, "ecli run -j -i 0.5 syscount -p {harness_pid}", getppid_and_kill,
        [event(map="syscalls", key="{getppid}", **{"value.count": GETPPIDS}),
         event(map="syscalls", key="{kill}", **{"value.count": KILLS})]),
    row("tool/syscount-x", None, "ecli run -j -i 0.5 syscount -x -p {harness_pid}", getppid_and_kill,
        [event(map="syscalls", key="{kill}", **{"value.count": KILLS})]),
    # --container: filter_cgroup_map set, so the verifier keeps the container filter's code (folded away
    # without it); the guest runs no container, so every event is dropped: loading is the check
    row("tool/syscount-container", None, "ecli run -j --container kmx-none syscount", getppid_and_kill,
        [said("attached; Ctrl-C to stop")]),
    row("tool/tcpretrans", None, "ecli run -j tcpretrans", unanswered_syn,
        [event(lport="{lport}", dport="{dport}", af=2, state=2, cgroup_id="{cgid}")]),  # the socket's, in softirq
    row("tool/tcpdrop", None, "ecli run -j tcpdrop", syn_to_closed_port,
        [event(sport="{sport}", dport="{dport}", af=2, tcpflags=2, has_sk=0, pid="{pid}")]),
    row("tool/oomkill", None, "ecli run -j oomkill", memcg_hog,
        [event(tpid="{pid}", kpid="{pid}", tcomm="{comm}", kcomm="{comm}")]),
    row("tool/drsnoop", None, "ecli run -j drsnoop", memcg_hog,
        [event(pid="{pid}", tid="{pid}", comm="{comm}", memcg=1)]),
)
