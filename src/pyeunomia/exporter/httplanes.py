"""Where the exporter's HTTP requests are answered: fixed worker threads in
named lanes (pages and scrapes on two, the management API on one, so
loading a program never delays a scrape), each lane with a bounded queue.
The I/O thread submits a request and is woken through a pipe when its
answer is ready; a full queue is the caller's 503."""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

from ..format.escape import escape_text
from .httpwire import Request


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class Application(Protocol):
    def admit(self, request: Request) -> str | Response:
        """Called on the I/O thread with the head only, so it must be cheap:
        the lane to run the request on, or the answer that refuses it (its
        body then is never read)."""

    def max_body(self, request: Request) -> int:
        """The largest body this admitted request may carry."""

    def handle(self, request: Request, body: bytes, client: str) -> Response:
        """Called on a worker thread; must not raise."""


Lane = tuple[str, int, int]  # name, threads, queued requests at most
Job = tuple[Any, Request, bytes]  # the caller's connection (opaque here), the request, its body


class Lanes:
    def __init__(self, app: Application, lanes: tuple[Lane, ...], problems: Callable[[str], None]):
        self.app = app
        self.lanes = lanes
        self.problems = problems
        self._queues: dict[str, queue.Queue[Job | None]] = {}
        self._threads: list[threading.Thread] = []
        self._done: deque[tuple[Any, Response]] = deque()
        self.wake_fd, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    @property
    def started(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        """Start the threads (not at construction: the exporter drops its
        privileges before any thread runs)."""
        for name, threads, queued in self.lanes:
            q: queue.Queue[Job | None] = queue.Queue(queued)
            self._queues[name] = q
            for i in range(threads):
                t = threading.Thread(target=self._work, args=(q,), name=f"http-{name}-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    def submit(self, lane: str, conn: Any, request: Request, body: bytes) -> bool:
        """Queue a request; False when the lane's queue is full."""
        try:
            self._queues[lane].put_nowait((conn, request, body))
        except queue.Full:
            return False
        return True

    def completed(self) -> Iterator[tuple[Any, Response]]:
        """Answers ready since the last call (empties the wake-up pipe)."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except OSError:
            pass
        while self._done:
            yield self._done.popleft()

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # full (a wake-up is pending anyway) or closed at shutdown
            pass

    def _work(self, q: queue.Queue[Job | None]) -> None:
        while True:
            item = q.get()
            if item is None:
                return
            conn, request, body = item
            try:
                response = self.app.handle(request, body, getattr(conn, "addr", ""))
            except Exception as e:  # noqa: BLE001 - the application should not raise; if it does, one line
                self.problems(f"internal error serving {request.method} {escape_text(request.path)}: "
                              f"{type(e).__name__}: {escape_text(str(e))}")
                response = Response(500, b'{"error": "internal error"}\n')
            self._done.append((conn, response))
            self.wake()

    def stop(self) -> None:
        """Drop what waits (a flood's queue must not delay the exit: 5.7 s
        of bcrypt checks once), let running answers end, join."""
        counts = {name: threads for name, threads, _queued in self.lanes}
        for name, q in self._queues.items():
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass
            for _ in range(counts[name]):
                q.put(None)  # one per thread; a full queue waits for its worker
        for t in self._threads:
            t.join(5)
        for fd in (self.wake_fd, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
