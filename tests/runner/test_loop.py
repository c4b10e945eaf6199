"""The poll loop's own rules, without the kernel (no readers)."""

from __future__ import annotations

import os
import time

import pytest

from pyeunomia.format.writer import DISCARD
from pyeunomia.runner.loop import PROMISE_S, EventLoop


@pytest.mark.parametrize("poll_ms", [-1, 0, -100000])
def test_a_duration_ends_the_loop_whatever_the_package_says_of_polling(poll_ms: int):
    """A package's poll_timeout_ms of -1 made epoll wait forever: `ecli run -d 1`
    ran for as long as no event came."""
    loop = EventLoop([], [], DISCARD, poll_ms)
    start = time.monotonic()
    loop.run(duration=0.2)
    loop.close()
    assert time.monotonic() - start < 1.0


class _Reader:
    """Records on the reads asked for, and when each read happened."""

    name = "events"
    lost = 0
    writer = DISCARD

    def __init__(self, records_on: set[int]):
        self.records_on = records_on
        self.reads: list[float] = []

    def read(self, limit: int = 1 << 62) -> int:
        self.reads.append(time.monotonic())
        return 1 if len(self.reads) in self.records_on else 0

    def close(self) -> None:
        pass


def _woken() -> int:
    """A wakeup fd that is readable once: the loop's first look is at once."""
    fd = os.eventfd(1, os.EFD_NONBLOCK)
    _open.append(fd)
    return fd


_open: list[int] = []  # the eventfds, closed with the module's tests


@pytest.fixture(autouse=True)
def _close_eventfds():
    yield
    while _open:
        os.close(_open.pop())


class _Promise:
    def __init__(self, until_s: float = 0.0) -> None:
        self.given: list[float] = []
        self.until_s = until_s

    def until(self, monotonic_s: float) -> None:
        self.given.append(monotonic_s)
        self.until_s = monotonic_s


def test_a_promise_keeps_the_reader_looking_until_it_has_passed_by_one_interval():
    """Records on the first read only: the loop promises PROMISE_S from then,
    looks every interval until the promise plus one interval is behind it
    (a record the program held back just before the promise ended is read),
    then blocks for the poll timeout (2 s) instead of looking again."""
    reader, promise = _Reader({1}), _Promise()
    loop = EventLoop([(reader, [])], [], DISCARD, 2000, _woken(), linger_ms=10, promise=promise)
    start = time.monotonic()
    loop.run(duration=0.6)
    loop.close()
    assert len(promise.given) == 1
    assert abs(promise.given[0] - (start + PROMISE_S)) < 0.05
    looks = [t - start for t in reader.reads[1:] if t < start + 0.55]  # not the drains at the run's end
    assert looks[-1] >= PROMISE_S + 0.01  # a look after the promise plus one interval
    assert looks[-1] < PROMISE_S + 0.1  # and then none until the run ends (the poll timeout is 2 s)
    assert 5 <= len(looks) <= 16  # about one per 10 ms interval


def test_without_a_promise_the_reader_looks_once_more_and_blocks():
    reader = _Reader({1})
    loop = EventLoop([(reader, [])], [], DISCARD, 2000, _woken(), linger_ms=10)
    loop.run(duration=0.4)
    loop.close()
    looks = [t for t in reader.reads[1:] if t < reader.reads[0] + 0.35]  # not the drains at the run's end
    assert len(looks) == 1  # one look an interval after the read, then blocked


def test_a_loop_opened_later_keeps_the_promise_in_force():
    """Program.events() opens a loop per call: one opened while an earlier
    loop's promise runs must look at once and every interval until it has
    passed, not block for its poll timeout (2 s) while the program holds
    records back."""
    reader, promise = _Reader(set()), _Promise(time.monotonic() + 0.15)
    loop = EventLoop([(reader, [])], [], DISCARD, 2000, linger_ms=10, promise=promise)
    start = time.monotonic()
    loop.run(duration=0.4)
    loop.close()
    looks = [t - start for t in reader.reads if t < start + 0.35]
    assert looks and looks[0] < 0.02  # at once, with no wakeup
    assert looks[-1] >= 0.15  # until the promise has passed
    assert len(looks) >= 5
