"""`softirq`: a softirq vector number as libbpf-tools' softirqs names it
("net_rx"); the order is the kernel's enum (include/linux/interrupt.h),
the same on every kernel since 2.6.34."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

VECTORS = ("hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu")


def softirq_name(vector: int) -> str:
    return VECTORS[vector] if 0 <= vector < len(VECTORS) else str(vector)


def _make(params: Mapping[str, Any]) -> Decode:
    return softirq_name


DECODER = DecoderType("softirq", ("int",), (), _make, "a softirq vector as its name ('net_rx')")
