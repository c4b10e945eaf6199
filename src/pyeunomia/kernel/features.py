"""Feature probes: what this kernel and process can do, asked directly rather
than inferred from a kernel version."""

from __future__ import annotations

import os
from functools import cache

from ..errors import KernelError, MissingPrivilegeError
from . import libbpf
from .caps import has_privilege

BPF_PROG_TYPE_KPROBE = 2
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
BPF_TRACE_ATTACH_TYPES = {"tp_btf": 23, "fentry": 24, "fexit": 25}  # BPF_TRACE_RAW_TP, _FENTRY, _FEXIT
BPF_MAP_TYPE_RINGBUF = 27
BPF_TCX_INGRESS = 46
LOOPBACK_IFINDEX = 1  # every network namespace's lo


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


@cache
def has_helper(prog_type: int, helper_id: int) -> bool:
    """Whether this kernel lets programs of `prog_type` call the helper
    (a probe load, ~0.2 ms; asked only about helpers that tell a program
    from its compat alternative, and once per process)."""
    return libbpf.probe_helper(prog_type, helper_id)


@cache
def has_raw_tracepoints() -> bool:
    return libbpf.probe_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT)


@cache
def can_trace(kind: str, target: str) -> bool | None:
    """Whether a `kind` program (fentry, fexit, tp_btf) loads and attaches
    at `target` here; None when kernel BTF does not name the target (a
    module's function: then only loading the program itself can tell).
    Kernels without trampolines, without BTF, or that refuse the program
    type (this project's VM: EPERM) answer False. A probe load and attach,
    then closed: 12-14 ms here idle (35-56 ms at a load average of 6 on 2
    cores), nearly all of it libbpf parsing vmlinux BTF to find the target;
    asked only for events that have twins, once per target and process."""
    return libbpf.probe_traced_attach(BPF_TRACE_ATTACH_TYPES[kind], target)


@cache
def has_tcx() -> bool:
    """tcx (Linux 6.6): tc programs attached as BPF links, no qdisc. Asked
    by querying lo's tcx ingress programs, which changes nothing: a kernel
    without tcx does not know the attach type (EINVAL)."""
    try:
        libbpf.prog_query_count(LOOPBACK_IFINDEX, BPF_TCX_INGRESS)
    except KernelError:
        return False
    return True


@cache
def has_cpu_cycles_sampling() -> bool:
    """Whether the CPU cycles counter can sample: virtual machines (this
    project's VM and its qemu guests) have no hardware PMU, and the kernel
    says ENOENT. Asked with one disabled event on this thread, closed at once."""
    try:
        fd = libbpf.perf_event_open_sampling(True, 1, -1, pid=0)
    except KernelError:
        return False
    os.close(fd)
    return True
