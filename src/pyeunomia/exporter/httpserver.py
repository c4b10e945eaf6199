"""The exporter's HTTP server: one I/O thread for every connection, a few
worker threads for the answers, and limits no client can talk its way past.

Why not a thread per connection (http.server's ThreadingHTTPServer, which
this replaces): its timeout is per read, so a client sending a header line
every 20 s held a thread forever; 1,500 such clients made 1,503 threads, and
under an open-file limit of 200 the accept loop spun at 93% CPU and /metrics
stopped answering. Here:

- one thread reads and writes every socket (selectors, non-blocking, TLS
  handshakes included), so a slow client costs a socket and a few KiB, never
  a thread; handlers run on fixed worker threads ("lanes": pages and scrapes
  on two, the management API on one, so loading a program never delays a
  scrape), each with a bounded queue (503 past it);
- a request has REQUEST_TIMEOUT_S in all, from its first byte (or from the
  connection's start) to its last body byte: a total, not per read; an idle
  keep-alive connection is closed after IDLE_TIMEOUT_S, and a client that
  does not read its answer within WRITE_TIMEOUT_S is dropped;
- at most `max_connections` are open (and never more than the open-file limit
  allows): a new connection at the cap closes the one that has waited
  longest without a complete request (idle keep-alives first), so a scrape,
  which sends its request at once, is still answered while slow clients hold
  the rest; out of file descriptors, accepting pauses instead of spinning;
- the head is parsed (httpwire) and judged by the application's `admit`
  before any body is read: a refused request (no token, too large, wrong
  path) is answered without buffering its body;
- nothing a client does writes a traceback: problems are one log line each,
  at most LOG_BURST per LOG_WINDOW_S.

Why not a maintained server library instead (weighed, read from their code):
prometheus_client's own server (0.26) is the same ThreadingMixIn design;
waitress (3.0.2, pure Python, one select loop and a worker pool, the nearest
fit) stops accepting at `connection_limit` (100) rather than making room, so
slow clients at the cap shut out every scrape, and its `channel_timeout` is
an inactivity timeout that each dripped byte restarts, so a drip is never
cut (not weighed further: an asyncio server such as aiohttp, which would move
the blocking scrapes and loads to executors and add dependencies). Both read
here would still need the total deadline and the eviction above, so this
module keeps them in one place, on the standard library.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ..format.escape import escape_text
from ..format.units import size_text
from .httplanes import Application, Lanes, Response
from .httpwire import CONTINUE, MAX_HEAD, BadRequest, Request, head_end, parse_head, response_head
from .ratelog import RateLimitedLog

if TYPE_CHECKING:
    import ssl

REQUEST_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 75.0  # longer than a 60 s scrape interval, so Prometheus keeps its connection
WRITE_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 512
FD_RESERVE = 64  # file descriptors kept for the programs' maps, links and the API's loads
ACCEPT_PAUSE_S = 0.1
SWEEP_S = 0.25  # deadlines are checked this often
RECV_BYTES = 64 << 10
LISTEN_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn; 128 made floods cost SYN retransmits (1-4 s)
EVICT_PROBES = 64  # silent connections read before one is closed to make room
SEND_BYTES = 256 << 10
LINGER_S = 2.0  # after refusing a request whose body is unread, read and drop it this long
LINGER_BYTES = 64 << 20

_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
# connection states
HANDSHAKE, IDLE, HEAD, BODY, WORK, SEND, LINGER, CLOSED = range(8)


class Limits(NamedTuple):
    max_connections: int = MAX_CONNECTIONS
    request_timeout_s: float = REQUEST_TIMEOUT_S
    idle_timeout_s: float = IDLE_TIMEOUT_S
    write_timeout_s: float = WRITE_TIMEOUT_S
    # name, threads, queued at most: pages and scrapes; the API's loads; first basic-auth checks (bcrypt)
    lanes: tuple[tuple[str, int, int], ...] = (("pages", 2, 64), ("api", 1, 8), ("auth", 1, 8))


DEFAULT_LIMITS = Limits()


class _Conn:
    __slots__ = ("addr", "buf", "close_after", "deadline", "events", "fd", "lane", "linger", "out", "request",
                 "scanned", "sent", "sock", "state", "tls")

    def __init__(self, sock: socket.socket, addr: str, tls: bool, now: float, timeout: float):
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.tls = tls
        self.state = HANDSHAKE if tls else HEAD
        self.buf = bytearray()
        self.deadline = now + timeout
        self.events = 0
        self.request: Request | None = None
        self.lane = ""
        self.out = memoryview(b"")
        self.sent = 0
        self.close_after = False
        self.linger = 0  # bytes of an unread body to drop after the answer (a lingering close)
        self.scanned = 0  # where the search for the end of the head goes on


class HttpServer:
    """Serves `app` on `address` until shutdown(); the same surface as
    socketserver's servers (serve_forever, shutdown, server_close)."""

    def __init__(self, address: tuple[str, int], app: Application, tls: ssl.SSLContext | None = None,
                 limits: Limits = DEFAULT_LIMITS, problems: Callable[[str], None] | None = None,
                 access: Callable[[str], None] | None = None):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(LISTEN_BACKLOG)
            self.socket.setblocking(False)
        except BaseException:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()
        self.app = app
        self.tls = tls
        self.limits = limits
        self.max_connections = min(limits.max_connections, _fd_budget())
        self.problems = RateLimitedLog(problems or (lambda line: None))
        self.access = RateLimitedLog(access) if access is not None else None
        self._sel = selectors.DefaultSelector()
        self._conns: dict[int, _Conn] = {}  # by fd, in the order their current wait began (oldest first)
        self._lanes = Lanes(app, limits.lanes, self.problems)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        # serve_forever's start and shutdown's look at it, taken in turn: the loop
        # either begins before shutdown looks (and shutdown waits for its end), or
        # sees the stop and never begins (see shutdown)
        self._life = threading.Lock()
        self._serving = False
        self._accepting = False
        self._resume_accept_at = 0.0
        self._next_sweep = 0.0
        self.evicted = 0  # connections closed to make room: for tests and benchmarks

    # -- life cycle ------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Run the I/O loop on this thread (worker threads start here, not
        in __init__: the exporter drops capabilities before any thread runs)."""
        del poll_interval  # the loop wakes on its own pipe; kept for socketserver's signature
        with self._life:
            if self._stop.is_set():
                return  # shut down before it began: the selector may be closed already
            self._serving = True
        try:  # from here shutdown waits for _stopped: set below whatever happens
            self._lanes.start()
            self._sel.register(self._lanes.wake_fd, _READ, None)
            self._set_accepting(True)
            while not self._stop.is_set():
                for key, events in self._sel.select(self._timeout()):
                    if key.data is None:
                        pass  # answers are ready, or shutdown: both looked at below
                    elif key.data is self:
                        self._guarded(None, self._accept)
                    else:
                        self._guarded(key.data, self._service, key.data, events)
                self._guarded(None, self._finish_work)
                now = time.monotonic()
                if now >= self._next_sweep:
                    self._guarded(None, self._sweep, now)
                if not self._accepting and now >= self._resume_accept_at:
                    self._set_accepting(True)
        finally:
            for conn in list(self._conns.values()):
                self._close(conn)
            self._stopped.set()

    def _guarded(self, conn: _Conn | None, call: Callable[..., None], *args: Any) -> None:
        """A bug met on the I/O thread costs one connection and a log line,
        never the loop: with the loop gone the socket still accepts, and
        every client would hang."""
        try:
            call(*args)
        except Exception as e:  # noqa: BLE001 - see the docstring
            where = f" on a connection from {conn.addr}" if conn is not None else ""
            self.problems(f"internal error{where}: {type(e).__name__}: {escape_text(str(e))[:200]}")
            if conn is not None:
                self._close(conn)

    def shutdown(self) -> None:
        """Stop serve_forever (from another thread) and wait for it, so
        server_close never closes the selector under a running loop. A
        SIGTERM just after the exporter started the loop's thread used to
        return here before the loop began; it then registered on the closed
        selector ("I/O operation on closed epoll object", 116 tries in 200 in
        test_start_then_immediate_shutdown_is_clean_every_time). Now the loop
        either never begins or is waited for (it wakes on the pipe, else
        within SWEEP_S)."""
        self._stop.set()
        self._lanes.wake()
        with self._life:
            serving = self._serving
        if serving:
            self._stopped.wait()

    def server_close(self) -> None:
        self._lanes.stop()
        self.socket.close()
        self._sel.close()

    @property
    def connections(self) -> int:
        return len(self._conns)

    def _finish_work(self) -> None:
        for conn, response in self._lanes.completed():
            if conn.state == WORK:
                self._respond(conn, response)

    # -- connections -----------------------------------------------------------------

    def _set_accepting(self, on: bool) -> None:
        if on == self._accepting:
            return
        if on:
            self._sel.register(self.socket, _READ, self)
        else:
            self._sel.unregister(self.socket)
        self._accepting = on

    def _pause_accepting(self, why: str) -> None:
        self._set_accepting(False)
        self._resume_accept_at = time.monotonic() + ACCEPT_PAUSE_S
        self.problems(why)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # out of file descriptors (the program's own fds grew): make room, wait a moment
                    if not self._evict_one():
                        self._pause_accepting(f"cannot accept: {e.strerror}")
                    return
                continue  # ECONNABORTED and the like: that client is gone
            # Room is made only for a connection that is really here: evicting before accept() closed
            # the last one accepted when its request had not arrived yet and no one else was waiting
            # (a scrape after a flood got a reset). When every connection is in a handler, this one is
            # kept anyway, one over the cap (the fd budget keeps FD_RESERVE spare), and accepting pauses.
            full = len(self._conns) >= self.max_connections and not self._evict_one()
            self._add(sock, addr)
            if full:
                self._pause_accepting(f"{len(self._conns) - 1} connections busy in handlers: not accepting "
                                      f"for {ACCEPT_PAUSE_S:g} s")
                return

    def _add(self, sock: socket.socket, addr: Any) -> None:
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the body must not wait for a delayed ACK
        except OSError:
            pass
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except OSError:
                sock.close()
                return
        host = addr[0] if isinstance(addr, tuple) else str(addr)
        conn = _Conn(sock, host, self.tls is not None, time.monotonic(), self.limits.request_timeout_s)
        self._conns[conn.fd] = conn
        self._want(conn, _READ)
        if conn.state == HANDSHAKE:
            self._handshake(conn)

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest without giving a
        complete request: idle keep-alives first; then one that has sent
        nothing, read first to be sure (a scrape accepted in the same burst
        as a flood has its request waiting in the socket, and reading it
        saves it); then partial requests and unread answers. Ones in a
        handler are kept. True when a connection was closed."""
        victim = next((c for c in self._conns.values() if c.state in (IDLE, LINGER)), None)
        if victim is None:
            silent = [c for c in self._conns.values() if c.state == HEAD and not c.buf][:EVICT_PROBES]
            before = len(self._conns)
            for conn in silent:
                self._read(conn)
                if len(self._conns) < before:
                    return True  # that one had hung up: room made
                if conn.state == HEAD and not conn.buf:
                    victim = conn
                    break
        if victim is None:
            victim = next((c for c in self._conns.values() if c.state != WORK), None)
        if victim is None:
            return False
        self.evicted += 1
        self.problems(f"connection limit ({self.max_connections}) reached: closed the longest-waiting "
                      f"connection, from {victim.addr}")
        self._close(victim)
        return True

    def _want(self, conn: _Conn, events: int) -> None:
        if events == conn.events:
            return
        if conn.events == 0:
            self._sel.register(conn.fd, events, conn)
        elif events == 0:
            self._sel.unregister(conn.fd)
        else:
            self._sel.modify(conn.fd, events, conn)
        conn.events = events

    def _close(self, conn: _Conn) -> None:
        if conn.state == CLOSED:
            return
        self._want(conn, 0)
        conn.state = CLOSED
        self._conns.pop(conn.fd, None)
        try:
            conn.sock.close()
        except OSError:
            pass
        conn.buf = bytearray()
        conn.out = memoryview(b"")

    def _requeue(self, conn: _Conn) -> None:
        """Move `conn` to the end of the age order: its wait starts now."""
        self._conns.pop(conn.fd, None)
        self._conns[conn.fd] = conn

    def _timeout(self) -> float:
        now = time.monotonic()
        wake = self._next_sweep
        if not self._accepting:
            wake = min(wake, self._resume_accept_at)
        return max(0.0, min(wake - now, 1.0))

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_S
        for conn in [c for c in self._conns.values() if c.deadline <= now and c.state != WORK]:
            if conn.state == BODY or (conn.state == HEAD and conn.buf):
                self._access(conn, 408)
                self._send_now(conn, 408, "the request took longer than "
                                          f"{self.limits.request_timeout_s:g} s: send it at once")
            self._close(conn)

    def _send_now(self, conn: _Conn, status: int, message: str) -> None:
        """A last answer before closing, sent only if the socket takes it at once."""
        body = _error_body(message)
        try:
            conn.sock.send(response_head(status, [("Content-Type", "application/json")], len(body), True) + body)
        except OSError:  # ssl.SSLError included
            pass

    # -- reading ----------------------------------------------------------------

    def _service(self, conn: _Conn, events: int) -> None:
        if conn.state == HANDSHAKE:
            self._handshake(conn)
        elif conn.state == SEND:
            self._write(conn)
        elif conn.state in (IDLE, HEAD, BODY):
            self._read(conn)
        elif conn.state == LINGER:
            self._drain(conn)

    def _handshake(self, conn: _Conn) -> None:
        import ssl

        sock: Any = conn.sock
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(conn, _READ)
            return
        except ssl.SSLWantWriteError:
            self._want(conn, _WRITE)
            return
        except (OSError, ValueError) as e:  # ssl.SSLError included: plain HTTP, a bad certificate
            self.problems(f"{conn.addr} TLS handshake failed: {escape_text(str(getattr(e, 'reason', None) or e))}")
            self._close(conn)
            return
        conn.state = HEAD
        self._want(conn, _READ)
        self._read(conn)  # the request may have come with the handshake's last message

    def _read(self, conn: _Conn) -> None:
        import ssl

        want = RECV_BYTES
        if conn.state == BODY and conn.request is not None and conn.request.content_length is not None:
            want = max(4096, min(RECV_BYTES, conn.request.content_length - len(conn.buf)))
        elif conn.state != BODY:
            want = max(4096, min(RECV_BYTES, MAX_HEAD + 1 - len(conn.buf)))
        try:
            data = conn.sock.recv(want)
            if conn.tls:
                pending = conn.sock.pending()  # type: ignore[attr-defined]
                while pending and len(data) < want + RECV_BYTES:
                    data += conn.sock.recv(pending)
                    pending = conn.sock.pending()  # type: ignore[attr-defined]
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except ssl.SSLWantWriteError:
            self._want(conn, _WRITE)
            return
        except OSError:  # a reset, ssl.SSLError: the client is gone, nothing to log
            self._close(conn)
            return
        if conn.tls:
            self._want(conn, _READ)
        if not data:  # the client closed (or half-closed) its side
            if conn.state == BODY or conn.buf:
                self._refuse(conn, 400, "the request ended early")
            else:
                self._close(conn)
            return
        if conn.state == IDLE:
            conn.state = HEAD
            conn.deadline = time.monotonic() + self.limits.request_timeout_s
        conn.buf += data
        self._advance(conn)

    def _advance(self, conn: _Conn) -> None:
        """Take a head, then a body, out of what has been read."""
        if conn.state in (IDLE, HEAD):
            if conn.scanned == 0 and conn.buf.startswith((b"\r", b"\n")):
                del conn.buf[: len(conn.buf) - len(conn.buf.lstrip(b"\r\n"))]  # empty lines before a request
            end = head_end(conn.buf, conn.scanned)
            if end < 0:
                if len(conn.buf) > MAX_HEAD:
                    self._refuse(conn, 431, f"the request head is over {MAX_HEAD >> 10} KiB")
                # the next read is searched from here on: a head dripped a byte at a time costs
                # linear time, not a rescan of all of it each time (quadratic: 75% CPU for 450 clients)
                conn.scanned = max(0, len(conn.buf) - 3)
                return
            conn.scanned = 0
            try:
                request = parse_head(bytes(conn.buf[:end]))
            except BadRequest as e:
                self._refuse(conn, e.status, str(e))
                return
            del conn.buf[:end]
            verdict = self.app.admit(request)
            conn.request = request
            unread = max(0, (request.content_length or 0) - len(conn.buf))
            if isinstance(verdict, Response):
                # the body stays unread: the connection cannot carry another request
                conn.linger = unread
                self._respond(conn, verdict, close=bool(request.content_length))
                return
            limit = self.app.max_body(request)
            if (request.content_length or 0) > limit:
                conn.linger = unread
                self._respond(conn, Response(413, _error_body(f"the body is over {size_text(limit)}")), close=True)
                return
            conn.lane = verdict
            conn.state = BODY
            if (request.expect_continue and request.content_length and len(conn.buf) < request.content_length
                    and not conn.tls):  # TLS clients wait a moment and send anyway (curl: 1 s)
                try:
                    conn.sock.send(CONTINUE)  # 25 bytes to a socket with nothing queued: taken at once
                except OSError:
                    pass
        if conn.state == BODY:
            assert conn.request is not None
            length = conn.request.content_length or 0
            if len(conn.buf) < length:
                return
            body = bytes(conn.buf[:length])
            del conn.buf[:length]
            self._dispatch(conn, conn.request, body)

    def _refuse(self, conn: _Conn, status: int, message: str) -> None:
        conn.request = None
        self._respond(conn, Response(status, _error_body(message)), close=True)

    def _dispatch(self, conn: _Conn, request: Request, body: bytes) -> None:
        conn.state = WORK
        self._want(conn, 0)  # nothing more is read until the answer is out: pipelined requests wait
        if not self._lanes.submit(conn.lane, conn, request, body):
            self._respond(conn, Response(503, _error_body("too many requests waiting: try again"),
                                         headers=(("Retry-After", "1"),)))

    # -- writing ------------------------------------------------------------------

    def _respond(self, conn: _Conn, response: Response, close: bool = False) -> None:
        request = conn.request
        close = close or request is None or not request.keep_alive or self._stop.is_set()
        headers = [("Content-Type", response.content_type), *response.headers]
        body = b"" if request is not None and request.method == "HEAD" else response.body
        conn.out = memoryview(response_head(response.status, headers, len(response.body), close) + body)
        conn.sent = 0
        conn.close_after = close
        conn.state = SEND
        conn.deadline = time.monotonic() + self.limits.write_timeout_s
        self._access(conn, response.status, len(response.body))
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        import ssl

        try:
            while conn.sent < len(conn.out):
                n = conn.sock.send(conn.out[conn.sent : conn.sent + SEND_BYTES])
                if n <= 0:
                    break
                conn.sent += n
        except (BlockingIOError, ssl.SSLWantWriteError):
            self._want(conn, _WRITE)
            return
        except ssl.SSLWantReadError:
            self._want(conn, _READ)
            return
        except OSError:
            self._close(conn)
            return
        if conn.sent < len(conn.out):
            self._want(conn, _WRITE)
            return
        if conn.close_after:
            self._linger_or_close(conn)
            return
        conn.out = memoryview(b"")
        conn.request = None
        conn.state = IDLE
        conn.deadline = time.monotonic() + self.limits.idle_timeout_s
        self._requeue(conn)
        self._want(conn, _READ)
        if conn.buf:  # a pipelined request arrived with the last one
            conn.state = HEAD
            conn.deadline = time.monotonic() + self.limits.request_timeout_s
            self._advance(conn)

    def _linger_or_close(self, conn: _Conn) -> None:
        """A client still sending a body we refused would get a reset, and
        with it lose our answer, if the socket closed with its bytes unread:
        read and drop them for up to LINGER_S (not over TLS, where the
        answer is the last record anyway)."""
        if conn.linger <= 0 or conn.tls:
            self._close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state = LINGER
        conn.buf = bytearray()
        conn.out = memoryview(b"")
        conn.linger = min(conn.linger, LINGER_BYTES)
        conn.deadline = time.monotonic() + LINGER_S
        self._want(conn, _READ)

    def _drain(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        conn.linger -= len(data)
        if not data or conn.linger <= 0:
            self._close(conn)

    def _access(self, conn: _Conn, status: int, size: int = 0) -> None:
        if self.access is None:
            return
        r = conn.request
        what = f"{r.method} {escape_text(r.target)}" if r is not None else "-"
        self.access(f"{conn.addr} {what} {status} {size}")


def _error_body(message: str) -> bytes:
    import json

    return (json.dumps({"error": message}) + "\n").encode()


def _fd_budget() -> int:
    """Connections that fit under the open-file limit, with FD_RESERVE kept
    for everything else (a loaded program holds a few fds per map and link)."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 64
    return max(8, soft - used - FD_RESERVE)
