"""The exporter's side of the container resolver process
(containers/resolverd.py): start it while still root, then ask it with the
same `lookup(cgroup_id) -> (Container | None, final)` as ContainerResolver.

Why a new interpreter (`python -I -m pyeunomia.cli.resolverd`) and
not a fork: by the time the exporter knows it needs one, it holds the
listening socket, the API token, loaded BPF objects and libbpf's state; a
fork would carry all of that (in memory, if not as descriptors) into a root
process, and forking a process that may have run threads is unsafe. A fresh
interpreter starts with nothing but the socket it is given (`-I`: no
PYTHONPATH, user site or working directory on its module path). Measured
here: 50-65 ms from start to its greeting (while the exporter loads its
programs), 14 MB resident, 16 us a round trip for a cgroup already known.

Final answers are kept (up to MAX_KNOWN ids), so each distinct cgroup id costs
one round trip, whichever container label asks. One question at a time
(a lock); each waits at most `timeout` for its answer. When the resolver
ends, or does not answer in time, or answers something else, container
labels are empty from then on, said in one log line: the exporter, no
longer root, cannot start another.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable

from .metadata import Container
from .resolverd import HELLO, MAX_HELLO, MAX_REPLY, REQUEST, decode_reply

LOOKUP_TIMEOUT_S = 20.0  # a scan naming new containers runs `ctr` (up to 5 s) for each containerd one
START_TIMEOUT_S = 30.0
MAX_KNOWN = 100_000


def start_resolver(log: Callable[[str], None], timeout: float = LOOKUP_TIMEOUT_S,
                   becoming: int | None = None) -> ResolverProxy:
    """Start the resolver process (as this process's user: call it as root)
    and return its proxy; `log` takes its one warning line. `becoming`: the
    uid this process is about to take, so its death can still signal the
    resolver (kernel/process.py die_with_parent)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    uid = [] if becoming is None else [str(becoming)]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "pyeunomia.cli.resolverd", str(theirs.fileno()), str(os.getpid()),
             *uid],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True, pass_fds=(theirs.fileno(),))
    except OSError:
        mine.close()
        raise
    finally:
        theirs.close()
    return ResolverProxy(mine, log, proc, timeout)


class ResolverProxy:
    """Asks a resolver process on `sock` (a SOCK_SEQPACKET socket); `proc` is
    that process, when this one started it. Thread-safe."""

    def __init__(self, sock: socket.socket, log: Callable[[str], None],
                 proc: subprocess.Popen[bytes] | None = None, timeout: float = LOOKUP_TIMEOUT_S):
        self._sock = sock
        sock.settimeout(timeout)
        self._log = log
        self.proc = proc
        self.pid = proc.pid if proc is not None else 0
        self.timeout = timeout
        self._lock = threading.Lock()
        self._known: dict[int, tuple[Container | None, bool]] = {}
        self.dead = ""  # why labels are empty now; "" while the resolver answers
        self.capabilities = 0
        self.asked = 0  # round trips made

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait for the resolver's greeting; if it cannot name containers,
        say so once (labels stay empty)."""
        with self._lock:
            try:
                self._sock.settimeout(timeout)
                hello = self._sock.recv(MAX_HELLO + 1)
            except OSError as e:
                self._die(f"did not start ({e.strerror or e})")
                return
            if not hello:
                self._die(f"did not start ({self._exit_status()})")
                return
            if not hello.startswith(HELLO) or len(hello) < len(HELLO) + 8 or len(hello) > MAX_HELLO:
                self._die("did not greet as a resolver does")
                return
            (self.capabilities,) = struct.unpack_from("<Q", hello, len(HELLO))
            reason = hello[len(HELLO) + 8:].decode("utf-8", "replace")
            if reason:
                self._die(f"cannot name containers: {reason}")
            self._sock.settimeout(self.timeout)

    def lookup(self, cgroup_id: int) -> tuple[Container | None, bool]:
        known = self._known.get(cgroup_id)
        if known is not None:
            return known
        with self._lock:
            known = self._known.get(cgroup_id)  # asked by another thread while this one waited
            if known is not None:
                return known
            if self.dead:
                return None, True
            self.asked += 1
            try:
                self._sock.send(REQUEST.pack(cgroup_id))
                data = self._sock.recv(MAX_REPLY + 1)
            except TimeoutError:
                self._die(f"did not answer within {self.timeout:g} s")
                return None, True
            except OSError as e:  # EPIPE, ECONNRESET: it has ended, or is ending
                status = self._exit_status()
                self._die(f"has gone ({status if status != 'still running' else e.strerror or e})")
                return None, True
            if not data:
                self._die(f"has gone ({self._exit_status()})")
                return None, True
            try:
                answered, found, final = decode_reply(data)
                if answered != cgroup_id:
                    raise ValueError(f"an answer for cgroup {answered}, not {cgroup_id}")
            except ValueError as e:
                self._die(f"answered what no resolver does ({e})")
                return None, True
            if final:
                if len(self._known) >= MAX_KNOWN:
                    self._known.clear()
                self._known[cgroup_id] = (found, final)
            return found, final

    def _exit_status(self) -> str:
        if self.proc is None:
            return "still running"
        try:
            code = self.proc.wait(1.0)
        except subprocess.TimeoutExpired:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def _die(self, why: str) -> None:
        """Labels empty from now on, said once; the resolver sees EOF and ends."""
        if self.dead:
            return
        self.dead = why
        self._sock.close()
        self._log(f"warning: the container resolver (pid {self.pid}) {why}: container labels are empty from now on")

    def close(self) -> None:
        with self._lock:
            if not self.dead:
                self.dead = "closed"
                self._sock.close()
        if self.proc is None:
            return
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            pass  # root's, and this process may be nobody by now: its parent-death signal ends it with us
