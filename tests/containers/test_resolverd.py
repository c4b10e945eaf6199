"""The resolver process's wire format and the exporter's proxy to it
(containers/resolverd.py, containers/proxy.py): bounded replies, one round
trip per cgroup id, and a resolver that dies, hangs or lies costs the labels
(one log line), never a crash or a hang. With a real resolver process where
its behaviour is the point (greeting, capabilities, ends on EOF), a hostile
peer on a socketpair where the bytes are."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyeunomia.containers.metadata import Container
from pyeunomia.containers.proxy import ResolverProxy, start_resolver
from pyeunomia.containers.resolverd import (
    FOUND,
    MAX_FIELD,
    MAX_REPLY,
    REPLY_HEAD,
    REQUEST,
    decode_reply,
    encode_reply,
    serve,
)
from pyeunomia.files import cgroup2_root
from pyeunomia.kernel.caps import CAPABILITIES

C = Container("podman", "a" * 64, "web", "localhost/img:1", "pod-1", "ns", "k8s-web",
              "/libpod_parent/libpod-" + "a" * 64)


def test_a_reply_round_trips() -> None:
    for found, final in ((C, True), (None, True), (None, False)):
        assert decode_reply(encode_reply(7, found, final)) == (7, found, final)


def test_fields_are_cut_so_a_reply_stays_bounded() -> None:
    huge = Container(*("é" * 5000 for _ in Container._fields))
    data = encode_reply(1, huge, True)
    assert len(data) == MAX_REPLY
    _, found, _ = decode_reply(data)
    assert found is not None and all(len(f.encode()) <= MAX_FIELD for f in found)
    assert found.name == "é" * (MAX_FIELD // 2)


@pytest.mark.parametrize("data", [
    b"", b"\0" * 8, REPLY_HEAD.pack(1, 9), REPLY_HEAD.pack(1, 0) + b"x", REPLY_HEAD.pack(1, FOUND),
    REPLY_HEAD.pack(1, FOUND) + b"\xff\xff" + b"x" * 10, encode_reply(1, C, True) + b"x",
    encode_reply(1, C, True)[:-1], b"\0" * (MAX_REPLY + 1)])
def test_a_malformed_reply_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_reply(data)


class Fake:
    def __init__(self) -> None:
        self.asked: list[int] = []

    def lookup(self, cgroup_id: int) -> tuple[Container | None, bool]:
        self.asked.append(cgroup_id)
        if cgroup_id == 1:
            raise RuntimeError("a bug")
        return (C, True) if cgroup_id == 2 else (None, cgroup_id != 3)


def test_serve_answers_8_byte_questions_and_ends_on_eof_or_anything_else() -> None:
    fake = Fake()
    for ending, code in ((b"", 0), (b"123", 1)):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        result: list[int] = []
        t = threading.Thread(target=lambda b=b, result=result: result.append(serve(b, fake)))  # type: ignore[misc]
        t.start()
        answers = []
        for cid in (1, 2, 3, 4):
            a.send(REQUEST.pack(cid))
            answers.append(decode_reply(a.recv(MAX_REPLY + 1)))
        if ending:
            a.send(ending)
        else:
            a.shutdown(socket.SHUT_WR)
        t.join(5)
        assert result == [code]
        assert answers == [(1, None, False), (2, C, True), (3, None, False), (4, None, True)]
        a.close()
        b.close()


def _hostile(reply: bytes | None) -> tuple[ResolverProxy, list[str], socket.socket]:
    """A proxy whose peer answers every question with `reply` (None: never)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lines: list[str] = []

    def peer() -> None:
        while b.recv(16):
            if reply is not None:
                b.send(reply)
        b.close()
    threading.Thread(target=peer, daemon=True).start()
    return ResolverProxy(a, lines.append, timeout=0.3), lines, b


@pytest.mark.parametrize(("reply", "why"), [
    (None, "did not answer within 0.3 s"),
    (encode_reply(99, C, True), "answered what no resolver does (an answer for cgroup 99, not 5)"),
    (b"x" * 20000, f"answered what no resolver does (a reply of {MAX_REPLY + 1} bytes)"),
])
def test_a_silent_or_lying_resolver_empties_the_labels_in_one_line(reply: bytes | None, why: str) -> None:
    proxy, lines, _ = _hostile(reply)
    started = time.monotonic()
    assert proxy.lookup(5) == (None, True)
    assert time.monotonic() - started < 3
    assert [proxy.lookup(i) for i in (5, 6, 7)] == [(None, True)] * 3  # at once, asking nothing
    assert proxy.asked == 1
    assert lines == [f"warning: the container resolver (pid 0) {why}: container labels are empty from now on"]


@pytest.fixture(params=[10.0])
def resolver(request: pytest.FixtureRequest) -> Iterator[tuple[ResolverProxy, list[str]]]:
    """A real resolver process, its proxy waiting `request.param` seconds for each answer."""
    if cgroup2_root() is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    lines: list[str] = []
    proxy = start_resolver(lines.append, timeout=request.param)
    proxy.wait_ready()
    yield proxy, lines
    proxy.close()


def test_a_real_resolver_answers_once_per_cgroup_and_ends_on_eof(resolver: tuple[ResolverProxy, list[str]]) -> None:
    proxy, lines = resolver
    root = cgroup2_root()
    assert root is not None and proxy.dead == ""
    if os.geteuid() == 0:
        assert proxy.capabilities == 1 << CAPABILITIES["CAP_SYS_PTRACE"]
    host = os.stat(root).st_ino  # the root cgroup: no container
    answers: list[tuple[Container | None, bool]] = []
    threads = [threading.Thread(target=lambda: answers.append(proxy.lookup(host))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == [(None, True)] * 8
    assert proxy.asked == 1  # the first final answer is kept: the other 7 asked nothing
    assert proxy.lookup(host) == (None, True) and proxy.asked == 1
    assert proxy.proc is not None
    proxy.close()  # EOF on its socket: it ends by itself
    assert proxy.proc.returncode == 0 and lines == []


@pytest.mark.parametrize("resolver", [1.0], indirect=True)
def test_a_stopped_resolver_costs_one_timeout(resolver: tuple[ResolverProxy, list[str]]) -> None:
    proxy, lines = resolver
    os.kill(proxy.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert proxy.lookup(424242) == (None, True)
        assert 1.0 <= time.monotonic() - started < 5
        assert proxy.lookup(424243) == (None, True)
    finally:
        os.kill(proxy.pid, signal.SIGCONT)
    assert lines == [f"warning: the container resolver (pid {proxy.pid}) did not answer within 1 s: container "
                     "labels are empty from now on"]
    assert proxy.proc is not None
    assert proxy.proc.wait(10) == 0  # its socket closed: it ends once it runs again
    assert not Path(f"/proc/{proxy.pid}").exists() or proxy.proc.returncode == 0
