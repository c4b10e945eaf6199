"""Feature probes: what this kernel and process can do, asked directly rather
than inferred from a kernel version."""

from __future__ import annotations

import os
from functools import cache

from ..errors import MissingPrivilegeError
from . import libbpf
from .caps import has_privilege

BPF_PROG_TYPE_KPROBE = 2
BPF_MAP_TYPE_RINGBUF = 27


def require_bpf_privileges() -> None:
    """Loading needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN, which root has)."""
    for cap in ("CAP_BPF", "CAP_PERFMON"):
        if not has_privilege(cap):
            raise MissingPrivilegeError(cap, "loading eBPF programs")


@cache
def has_kprobes() -> bool:
    """Kprobes need the kprobe PMU or tracefs kprobe_events; kernels built
    without CONFIG_KPROBES have neither."""
    return (os.path.exists("/sys/bus/event_source/devices/kprobe")
            or os.path.exists("/sys/kernel/tracing/kprobe_events")
            or os.path.exists("/sys/kernel/debug/tracing/kprobe_events"))


@cache
def has_ringbuf() -> bool:
    return libbpf.probe_map_type(BPF_MAP_TYPE_RINGBUF)
