"""The poll loop: wait on every event buffer at once, drain them in batches,
flush output once per batch, and sample maps when they are due."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..format.writer import EventWriter

# How long the reader keeps looking every interval after the last record it
# read, promising so to the program (runner/promise.py): events coming more
# often than this cost the traced tasks no wakeup; 10 looks at 10 ms.
PROMISE_S = 0.1


class Reader(Protocol):
    name: str
    lost: int
    writer: EventWriter

    def read(self, limit: int = ...) -> int: ...

    def close(self) -> None: ...


class Promiser(Protocol):
    until_s: float  # the promise in force, CLOCK_MONOTONIC seconds

    def until(self, monotonic_s: float) -> None: ...


class Sampler(Protocol):
    """Something the loop runs when due: a sampled map, the -i map dump."""

    @property
    def next_due(self) -> float: ...

    def sample_now(self) -> None: ...


class EventLoop:
    def __init__(self, readers: list[tuple[Reader, list[int]]], samplers: Sequence[Sampler],
                 writer: EventWriter, poll_ms: int, wakeup_fd: int | None = None, linger_ms: int | None = None,
                 promise: Promiser | None = None):
        self.readers = [r for r, _ in readers]
        self.samplers = samplers
        self.writer = writer
        # a package's poll_timeout_ms of 0 or less would make epoll wait forever, past any -d
        self.poll_s = max(1, poll_ms) / 1000.0
        # A BPF program that wakes the reader at most once per interval (opensnoop)
        # holds back what it writes shortly after a wakeup: after reading
        # records, look again within that interval rather than the poll timeout.
        self.linger_s = min(self.poll_s, linger_ms / 1000.0) if linger_ms else 0.0
        self._look_again_at = 0.0  # monotonic time; 0: nothing held back
        self._promise = promise if self.linger_s else None
        # monotonic time the program was told we look until; a loop opened on the
        # program later keeps the promise in force, and first looks at once
        self._promised_until = self._promise.until_s if self._promise else 0.0
        if self._promised_until > time.monotonic():
            self._look_again_at = time.monotonic()
        self.received = 0
        self._epoll = select.epoll()
        for _reader, fds in readers:
            for fd in fds:
                self._epoll.register(fd, select.EPOLLIN)
        self._wakeup_fd = wakeup_fd
        if wakeup_fd is not None:
            self._epoll.register(wakeup_fd, select.EPOLLIN)

    def run(self, duration: float | None = None, should_stop: Callable[[], bool] = lambda: False) -> None:
        deadline = time.monotonic() + duration if duration is not None else None
        while not should_stop():
            now = time.monotonic()
            timeout = self.poll_s
            if self._look_again_at:
                timeout = min(timeout, max(0.0, self._look_again_at - now))
            if self.samplers:
                timeout = min(timeout, max(0.0, min(s.next_due for s in self.samplers) - now))
            if deadline is not None:
                if now >= deadline:
                    break
                timeout = min(timeout, deadline - now)
            for fd, _ev in self._epoll.poll(timeout):
                if fd == self._wakeup_fd:
                    drain_fd(fd)
            looked = time.monotonic()
            read = self.drain()
            if self.linger_s:
                self._linger(looked, read)
            now = time.monotonic()
            for s in self.samplers:
                if now >= s.next_due:
                    s.sample_now()
        self.drain()

    def _linger(self, looked: float, read: int) -> None:
        """After a look at `looked` that read `read` records: when to look
        again. Under a promise, every interval until it has passed by one
        interval (a record the program held back just before the promise
        ended is then read), and only then block."""
        now = time.monotonic()
        if read:
            self._look_again_at = now + self.linger_s
            if self._promise is not None:
                self._promised_until = now + PROMISE_S
                self._promise.until(self._promised_until)
        elif looked < self._promised_until + self.linger_s:
            self._look_again_at = now + self.linger_s
        elif now >= self._look_again_at:
            self._look_again_at = 0.0

    def drain(self) -> int:
        """Read everything the buffers hold now and write it out."""
        n = 0
        for r in self.readers:
            n += r.read()
        self.received += n
        self.writer.end_batch()
        return n

    def lost(self) -> int:
        return sum(r.lost for r in self.readers)

    def close(self) -> None:
        """Stop polling; the readers belong to the caller."""
        self._epoll.close()


def drain_fd(fd: int) -> None:
    """Empty a non-blocking wake-up pipe."""
    try:
        os.read(fd, 4096)
    except BlockingIOError:
        pass
