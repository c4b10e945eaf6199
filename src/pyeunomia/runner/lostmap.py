"""Kernel-side losses: a program that cannot reserve room for an event
counts it in a map named `lost` (one u64, per CPU or shared). Reading that
map makes those losses visible next to the ones the reader sees."""

from __future__ import annotations

import struct
import time

from ..format.writer import EventWriter
from .loader import MapInfo
from .maps import read_entries

LOST_MAP_NAME = "lost"
ARRAY_MAP_TYPES = {2, 6}  # array, percpu array
CHECK_INTERVAL_S = 1.0


def is_lost_counter(info: MapInfo) -> bool:
    return info.name == LOST_MAP_NAME and info.type in ARRAY_MAP_TYPES and info.value_size == 8


class LostCounter:
    """Reports growth of a `lost` map as lost events, at most once a second."""

    def __init__(self, info: MapInfo, writer: EventWriter):
        self.name = info.name
        self.info = info
        self.writer = writer
        self.lost = 0
        self._next_check = 0.0

    def total(self) -> int:
        m = self.info
        total = 0
        for _key, value in read_entries(m.fd, m.type, m.key_size, m.value_size, m.max_entries):
            step = 8
            total += sum(v for (v,) in struct.iter_unpack("<Q", value[: len(value) // step * step]))
        return total

    def read(self, limit: int = 0, force: bool = False) -> int:
        now = time.monotonic()
        if not force and now < self._next_check:
            return 0
        self._next_check = now + CHECK_INTERVAL_S
        total = self.total()
        if total > self.lost:
            self.writer.report_lost(total - self.lost, "kernel (ring buffer full)")
            self.lost = total
        return 0

    def close(self) -> None:
        pass



