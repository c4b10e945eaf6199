"""`ktime`: a boot-time stamp in ns (bpf_ktime_get_boot_ns, or with
`"clock": "monotonic"` bpf_ktime_get_ns) as the wall-clock time
"HH:MM:SS.ffffff". The offset between the clock and the wall clock is read
once, when the decoder is made (a stamp then costs one addition): a clock
step during a run shifts the times, as libbpf-tools' own conversion does."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

CLOCKS = {"boot": time.CLOCK_BOOTTIME, "monotonic": time.CLOCK_MONOTONIC}


def wall_offset_ns(clock: int) -> int:
    """realtime - clock, in ns, taken between two readings of the clock."""
    before = time.clock_gettime_ns(clock)
    real = time.time_ns()
    after = time.clock_gettime_ns(clock)
    return real - (before + after) // 2


def wall_text(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{rest // 1000:06d}"


def _make(params: Mapping[str, Any]) -> Decode:
    clock = params.get("clock", "boot")
    if clock not in CLOCKS:
        raise ValueError(f"clock: expected one of {', '.join(CLOCKS)}, not {clock!r}")
    offset: list[int] = []

    def decode(value: int) -> str:
        if not offset:
            offset.append(wall_offset_ns(CLOCKS[clock]))  # on the first stamp: make() reads no clock
        return wall_text(value + offset[0])
    return decode


DECODER = DecoderType("ktime", ("int",), ("clock",), _make,
                      "a boot-time stamp in ns as the wall-clock time HH:MM:SS.ffffff")
