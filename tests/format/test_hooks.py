"""Which kernel event a SEC() name hooks, and how good that attach type is:
what tells twins from programs that do different work (format/hooks.py)."""

from __future__ import annotations

import pytest

from pyeunomia.format.hooks import Hook, attach_of

SWITCH = Hook("tracepoint", "sched_switch")
UNLINKAT_IN, UNLINKAT_OUT = Hook("entry", "syscall unlinkat"), Hook("exit", "syscall unlinkat")


@pytest.mark.parametrize(("section", "kind", "hook", "rank"), [
    ("tp_btf/sched_switch", "tp_btf", SWITCH, 0),
    ("raw_tp/sched_switch", "raw_tp", SWITCH, 1),
    ("raw_tracepoint/sched_switch", "raw_tp", SWITCH, 1),
    ("tp/sched/sched_switch", "tracepoint", SWITCH, 3),
    ("tracepoint/sched/sched_switch", "tracepoint", SWITCH, 3),
    ("fentry/do_unlinkat", "fentry", Hook("entry", "do_unlinkat"), 0),
    ("fentry.s/do_unlinkat", "fentry", Hook("entry", "do_unlinkat"), 0),
    ("kprobe/do_unlinkat", "kprobe", Hook("entry", "do_unlinkat"), 2),
    ("fexit/do_unlinkat", "fexit", Hook("exit", "do_unlinkat"), 0),
    ("kretprobe/do_unlinkat", "kretprobe", Hook("exit", "do_unlinkat"), 2),
    ("fentry/__x64_sys_unlinkat", "fentry", UNLINKAT_IN, 0),
    ("kprobe/__arm64_sys_unlinkat", "kprobe", UNLINKAT_IN, 2),
    ("kprobe/__se_sys_unlinkat", "kprobe", UNLINKAT_IN, 2),
    ("ksyscall/unlinkat", "ksyscall", UNLINKAT_IN, 2),
    ("tracepoint/syscalls/sys_enter_unlinkat", "tracepoint", UNLINKAT_IN, 3),
    ("fexit/__x64_sys_unlinkat", "fexit", UNLINKAT_OUT, 0),
    ("kretsyscall/unlinkat", "kretsyscall", UNLINKAT_OUT, 2),
    ("tp/syscalls/sys_exit_unlinkat", "tracepoint", UNLINKAT_OUT, 3),
    ("kprobe/__ia32_sys_unlinkat", "kprobe", Hook("entry", "__ia32_sys_unlinkat"), 2),  # 32-bit callers only
    ("raw_tp/sys_enter", "raw_tp", Hook("tracepoint", "sys_enter"), 1),  # every syscall, not one
])
def test_sections_name_their_event(section, kind, hook, rank):
    attach = attach_of(section)
    assert attach is not None and (attach.kind, attach.hook, attach.rank) == (kind, hook, rank)


@pytest.mark.parametrize("section", [
    "kprobe/do_unlinkat+0x10",  # another place in the function: another event
    "kprobe/md_mod:md_flush_request", "uprobe/bin/bash:readline", "xdp", "tc", "perf_event", "lsm/socket_connect",
    "tp/sched", "tracepoint/a/b/c", "fentry/", "raw_tp/a/b", ".text",
])
def test_sections_without_a_shared_event(section):
    assert attach_of(section) is None


def test_hooks_read_as_events():
    assert str(SWITCH) == "tracepoint sched_switch"
    assert str(UNLINKAT_IN) == "entry to syscall unlinkat"
    assert str(Hook("exit", "do_unlinkat")) == "return from do_unlinkat()"
