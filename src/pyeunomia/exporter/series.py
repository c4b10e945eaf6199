"""A metric's series: a bounded store of label sets and their values.

At most `limit` distinct label sets are kept. An event whose label set is new
once the store is full is counted in one overflow series instead, and
`refused` grows by one for that label set in that batch. Series not updated
for `expire_after` seconds are dropped when `expire` runs (at scrape time),
which makes room again. Memory is therefore bounded by the limit whatever the
event stream holds (random file names, pids).

Not thread-safe: the owner holds a lock around updates and snapshots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Cell:
    """A counter's or gauge's value and when it last changed (monotonic s)."""

    __slots__ = ("seen", "value")

    def __init__(self) -> None:
        self.value: float = 0
        self.seen = 0.0


class HistogramCell:
    """Per-bucket counts (not cumulative; the last is +Inf) and the sum."""

    __slots__ = ("buckets", "seen", "sum")

    def __init__(self, n_buckets: int) -> None:
        self.buckets = [0] * n_buckets
        self.sum: float = 0
        self.seen = 0.0


AnyCell = Any  # Cell or HistogramCell: the store does not look inside


class SeriesStore:
    def __init__(self, limit: int, expire_after: float | None, new_cell: Callable[[], AnyCell]):
        if limit < 1:
            raise ValueError("a series limit is at least 1")
        self.limit = limit
        self.expire_after = expire_after
        self.new_cell = new_cell
        self.cells: dict[tuple[str, ...], AnyCell] = {}
        self.overflow: AnyCell = new_cell()
        self.overflow_used = False
        self.refused = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self.cells)

    def cell(self, labels: tuple[str, ...], now: float) -> AnyCell:
        """The cell for `labels`, made if there is room, else the overflow cell."""
        c = self.cells.get(labels)
        if c is None:
            if len(self.cells) >= self.limit:
                self.refused += 1
                self.overflow_used = True
                self.overflow.seen = now
                return self.overflow
            c = self.cells[labels] = self.new_cell()
        c.seen = now
        return c

    def expire(self, now: float) -> int:
        """Drop the series not updated for `expire_after` seconds; how many."""
        if self.expire_after is None or not self.cells:
            return 0
        cutoff = now - self.expire_after
        dead = [labels for labels, c in self.cells.items() if c.seen < cutoff]
        for labels in dead:
            del self.cells[labels]
        self.expired += len(dead)
        return len(dead)
