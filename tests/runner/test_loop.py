"""The poll loop's own rules, without the kernel (no readers)."""

from __future__ import annotations

import time

import pytest

from pyeunomia.format.writer import DISCARD
from pyeunomia.runner.loop import EventLoop


@pytest.mark.parametrize("poll_ms", [-1, 0, -100000])
def test_a_duration_ends_the_loop_whatever_the_package_says_of_polling(poll_ms: int):
    """A package's poll_timeout_ms of -1 made epoll wait forever: `ecli run -d 1`
    ran for as long as no event came."""
    loop = EventLoop([], [], DISCARD, poll_ms)
    start = time.monotonic()
    loop.run(duration=0.2)
    loop.close()
    assert time.monotonic() - start < 1.0
