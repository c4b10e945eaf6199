"""The server under hostile clients, in-process on 127.0.0.1: deadlines that
are totals, a connection cap that still lets a scrape in, no thread per
connection, bodies of refused requests never read, and no traceback for
anything a client does. (tests/e2e/test_exporter_clients.py does the same
against the real exporter process, at scale.)"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from pyeunomia.exporter.httplanes import Response
from pyeunomia.exporter.httpserver import HttpServer, Limits
from pyeunomia.exporter.httpwire import Request
from pyeunomia.exporter.ratelog import RateLimitedLog

GET = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


class App:
    """Answers /metrics with `size` bytes, /slow after `slow_s`, refuses /secret without a body being read."""

    def __init__(self, size: int = 10, slow_s: float = 0.0):
        self.size = size
        self.slow_s = slow_s
        self.bodies: list[bytes] = []

    def admit(self, request: Request) -> str | Response:
        if request.path == "/secret":
            return Response(401, b'{"error": "no"}\n')
        return "api" if request.path == "/slow" else "pages"

    def max_body(self, request: Request) -> int:
        return 1 << 20

    def handle(self, request: Request, body: bytes, client: str) -> Response:
        self.bodies.append(body)
        if request.path == "/slow":
            time.sleep(self.slow_s)
        if request.path == "/boom":
            raise RuntimeError("a bug\nwith two lines")
        return Response(200, b"x" * self.size, "text/plain")


class Served:
    def __init__(self, app: App, limits: Limits):
        self.lines: list[str] = []
        self.server = HttpServer(("127.0.0.1", 0), app, limits=limits, problems=self.lines.append)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        assert self.request(b"GET /warm-up HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200 ")  # workers up

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def request(self, data: bytes = GET, timeout: float = 5) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return read_all(s)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def read_all(s: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


@pytest.fixture
def served(request) -> Iterator[Served]:
    app, limits = getattr(request, "param", (App(), Limits()))
    s = Served(app, limits)
    yield s
    s.stop()


def fast(**kw: float) -> Limits:
    return Limits(**{"request_timeout_s": 1.0, "idle_timeout_s": 1.0, "write_timeout_s": 1.0, **kw})


@pytest.mark.parametrize("served", [(App(), fast())], indirect=True)
def test_a_dripping_client_is_dropped_at_the_total_deadline(served):
    """One byte every 0.2 s keeps a per-read timeout happy forever; the
    request's total deadline (1 s here) ends it with a 408."""
    s = served.connect()
    start = time.monotonic()
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
    reply = b""
    for _ in range(50):
        try:
            s.sendall(b"X")
            time.sleep(0.2)
        except OSError:
            break
        s.setblocking(False)
        try:
            reply += s.recv(4096)
        except BlockingIOError:
            pass
        s.setblocking(True)
        if reply:
            break
    took = time.monotonic() - start
    s.close()
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert 0.9 < took < 2.5, took


@pytest.mark.parametrize("served", [(App(), fast())], indirect=True)
def test_an_idle_keep_alive_connection_is_closed(served):
    s = served.connect()
    s.sendall(GET)
    assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
    start = time.monotonic()
    assert s.recv(4096) == b""  # the server closed it
    assert 0.7 < time.monotonic() - start < 2.5
    s.close()
    assert served.server.connections == 0


@pytest.mark.parametrize("served", [(App(), fast(max_connections=8, request_timeout_s=60.0))], indirect=True)
def test_at_the_connection_cap_a_scrape_is_still_answered(served):
    threads = threading.active_count()
    slow = []
    for _ in range(40):
        s = served.connect()
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")  # never finished
        slow.append(s)
    time.sleep(0.2)
    assert served.server.connections <= 8
    for _ in range(5):
        start = time.monotonic()
        assert served.request().startswith(b"HTTP/1.1 200 ")
        assert time.monotonic() - start < 0.5
    assert threading.active_count() == threads  # no thread per connection
    assert served.server.evicted >= 32
    assert any("connection limit (8) reached" in line for line in served.lines)
    for s in slow:
        s.close()


@pytest.mark.parametrize("served", [(App(), fast(max_connections=8, request_timeout_s=60.0))], indirect=True)
def test_at_the_cap_a_newcomer_is_not_evicted_before_anyone_else_arrives(served):
    slow = [served.connect() for _ in range(8)]
    for s in slow:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")  # partial heads: each is older than the newcomer
    time.sleep(0.2)
    with served.connect() as late:
        time.sleep(0.3)  # accepted, its request not sent yet, nobody else waiting: no reason to close it
        late.sendall(GET)
        assert read_all(late).startswith(b"HTTP/1.1 200 ")
    assert served.server.evicted == 1  # one slow client made room for it, once it was here
    for s in slow:
        s.close()


@pytest.mark.parametrize("served", [(App(), Limits())], indirect=True)
def test_many_connections_take_no_threads(served):
    threads = threading.active_count()
    conns = [served.connect() for _ in range(200)]
    for s in conns:
        s.sendall(b"GET /met")
    time.sleep(0.2)
    assert served.server.connections == 200
    assert threading.active_count() == threads
    assert served.request().startswith(b"HTTP/1.1 200 ")
    for s in conns:
        s.close()


@pytest.mark.parametrize("served", [(App(size=16 << 20), fast())], indirect=True)
def test_a_client_that_never_reads_its_answer_is_dropped(served):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", served.port))
    s.sendall(GET)
    time.sleep(2.5)  # the write deadline is 1 s
    assert served.server.connections == 0
    s.close()
    assert served.request().startswith(b"HTTP/1.1 200 ")


def test_a_refused_request_never_has_its_body_read(served):
    s = served.connect()
    s.sendall(b"POST /secret HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
    reply = read_all(s)  # answered and closed without the 100 MiB being sent
    s.close()
    assert reply.startswith(b"HTTP/1.1 401 ") and b"Connection: close" in reply


def test_a_body_over_the_limit_is_refused_from_its_head(served):
    reply = served.request(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413 ") and b"1 MiB" in reply


def test_pipelined_requests_are_answered_in_order(served):
    reply = served.request(GET + b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 ") == 2 and reply.endswith(b"x" * 10)


def test_post_with_expect_continue_gets_its_body_read(served):
    s = served.connect()
    s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert s.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"hello")
    assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
    s.close()
    assert served.server.app.bodies[-1] == b"hello"  # type: ignore[attr-defined]


def test_resets_and_garbage_write_no_traceback(served):
    for data in (GET[:10], b"\x16\x03\x01\x02\x00" + bytes(range(256)), b"GET / HTTP/1.1\r\n" + b"A" * 70000):
        s = served.connect()
        s.sendall(data)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a RST
        s.close()
    assert served.request(b"\x00\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert served.request(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 500 ")
    assert served.request().startswith(b"HTTP/1.1 200 ")
    assert not any("Traceback" in line or "\n" in line for line in served.lines), served.lines
    assert any("internal error serving GET /boom: RuntimeError: a bug\\nwith two lines" in line
               for line in served.lines)


@pytest.mark.parametrize("served", [(App(slow_s=1.5), Limits())], indirect=True)
def test_a_slow_api_call_does_not_delay_scrapes(served):
    t = threading.Thread(target=served.request, args=(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",))
    t.start()
    time.sleep(0.1)
    start = time.monotonic()
    assert served.request().startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - start < 0.5
    t.join()


def test_head_is_answered_without_a_body(served):
    reply = served.request(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 10\r\n" in reply and reply.endswith(b"\r\n\r\n")


def test_the_log_is_rate_limited():
    lines: list[str] = []
    log = RateLimitedLog(lines.append, burst=3, window=0.2)
    for i in range(100):
        log(f"line {i}")
    assert lines == ["line 0", "line 1", "line 2"]
    time.sleep(0.25)
    log("later")
    assert lines[3:] == ["97 more log lines left out in the last 0.2 s", "later"]


def test_tls_handshakes_that_stall_or_fail_hold_no_thread_and_no_scrape(tmp_path):
    import ssl

    from .webcerts import self_signed

    cert, key = self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    lines: list[str] = []
    server = HttpServer(("127.0.0.1", 0), App(), server_ctx, fast(request_timeout_s=2.0), problems=lines.append)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(cert))
    try:
        stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]  # never say hello
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"\x16\x03\x01\x00\xff\x01\x00")  # the start of a ClientHello, and no more
        with socket.create_connection(("127.0.0.1", port)) as plain:  # plain HTTP to a TLS port
            plain.sendall(GET)
            assert b"HTTP/1" not in read_all(plain)
        threads = threading.active_count()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                    client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                assert read_all(tls).startswith(b"HTTP/1.1 200 ")
        assert threading.active_count() == threads
        time.sleep(2.6)  # the handshakes' deadline passed: all closed
        assert server.connections == 0
        assert any("TLS handshake failed" in line for line in lines)
        assert not any("Traceback" in line or "\n" in line for line in lines)
        for s in [*stalled, half]:
            s.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_client_sending_a_refused_body_still_reads_the_answer(served):
    """The body is dropped, not buffered, after the answer (a lingering
    close); closing at once would reset the connection under the client
    and lose the 413 it is owed."""
    import http.client

    for path, status in (("/x", 413), ("/secret", 401)):
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        conn.request("POST", path, body=b"y" * (3 << 20))
        assert conn.getresponse().status == status
        conn.close()
    assert served.request().startswith(b"HTTP/1.1 200 ")


FLOOD = r"""
import socket, sys, time
port, end = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
held = []
while time.monotonic() < end:
    try:
        held.append(socket.create_connection(("127.0.0.1", port), timeout=1))
    except OSError:
        pass
    if len(held) > 200:
        for s in held:
            s.close()
        held.clear()
"""


@pytest.mark.parametrize("served", [(App(), fast(max_connections=16, request_timeout_s=60.0))], indirect=True)
def test_a_scrape_in_a_flood_of_silent_connections_is_read_not_evicted(served):
    """Connections that send nothing, opened by other processes as fast as
    they can: the cap makes room by closing silent ones, but reads each
    first, so a scrape accepted in the same burst keeps its place (before,
    10 scrapes of 14 were reset at a cap of 64)."""
    import subprocess
    import sys

    flooders = [subprocess.Popen([sys.executable, "-c", FLOOD, str(served.port), "6"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        replies = []
        for _ in range(20):
            try:
                replies.append(served.request(timeout=5))
            except OSError as e:
                replies.append(repr(e).encode())
    finally:
        for p in flooders:
            p.kill()
            p.wait()
    assert all(r.startswith(b"HTTP/1.1 200 ") for r in replies), [r[:40] for r in replies]
    assert served.server.evicted > 0


def test_shutdown_before_the_loop_begins_leaves_it_nothing_to_do():
    # The exporter starts serve_forever on a thread and a SIGTERM right then
    # calls shutdown() and server_close() before that thread has run: the
    # loop, when it runs at last, must return without touching the closed
    # selector (it raised "I/O operation on closed epoll object") and start
    # no worker thread.
    server = HttpServer(("127.0.0.1", 0), App())
    server.shutdown()
    server.server_close()
    threads = threading.active_count()
    server.serve_forever()
    assert threading.active_count() == threads


def test_start_then_immediate_shutdown_is_clean_every_time():
    # The same race left to the scheduler, as a SIGTERM at start-up leaves it:
    # no exception on the I/O thread, and every thread it started ends.
    failures: list[BaseException] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)  # type: ignore[assignment,arg-type]
    try:
        for i in range(200):
            server = HttpServer(("127.0.0.1", 0), App())
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            if i % 2:
                time.sleep(0.0001 * (i % 7))  # sometimes the loop has begun, sometimes not
            server.shutdown()
            server.server_close()
            thread.join(5)
            assert not thread.is_alive()
    finally:
        threading.excepthook = hook
    assert failures == []
