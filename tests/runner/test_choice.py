"""The choice among twins and the user's --only/--skip (runner/choice.py),
with the kernel's answers given; tests/e2e/test_twins.py asks the kernel.

The fentry/tp_btf probe (kernel/features.can_trace) measured here: 12-14 ms
a target idle, 35-56 ms at a load average of 6, nearly all of it libbpf
reading vmlinux BTF; asked only for events hooked by several attach types,
once per target and process. The twins package's whole choice (three
probed events): 116-128 ms at that load, 0.7 ms once cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyeunomia.errors import UsageError
from pyeunomia.format.hooks import Attach
from pyeunomia.format.insns import program_maps
from pyeunomia.format.objspec import ObjectSpec
from pyeunomia.runner import choice

from ..e2e.helpers import compile_bpf

TRIO = [("on_fentry", "fentry/__x64_sys_unlinkat"), ("on_kprobe", "ksyscall/unlinkat"),
        ("on_tp", "tracepoint/syscalls/sys_enter_unlinkat"), ("exit_tp", "tracepoint/syscalls/sys_exit_unlinkat")]
SWITCH = [("sw_btf", "tp_btf/sched_switch"), ("sw_raw", "raw_tp/sched_switch"),
          ("sw_tp", "tracepoint/sched/sched_switch"), ("wakeup", "tp_btf/sched_wakeup"),
          ("wakeup_new", "tp_btf/sched_wakeup_new")]


def kernel(**answers: bool | None):
    """A probe answering by attach kind (fentry=False...); unnamed kinds: yes."""
    asked: list[str] = []

    def probe(attach: Attach) -> bool | None:
        asked.append(attach.kind)
        return answers.get(attach.kind, True)
    return probe, asked


def test_the_best_type_the_kernel_takes_loads_alone():
    probe, asked = kernel()
    got = choice.choose_twins(TRIO, probe=probe)
    assert got.kept == ["on_fentry", "exit_tp"]  # the exit has no twin: it loads, unprobed
    assert asked == ["fentry"]
    assert got.notes == ["entry to syscall unlinkat: loads 'on_fentry' (fentry); "
                         "skips 'on_kprobe' (ksyscall), 'on_tp' (tracepoint)"]


def test_without_fentry_or_kprobes_the_tracepoint_loads():
    probe, asked = kernel(fentry=False, ksyscall=False)
    got = choice.choose_twins(TRIO, probe=probe)
    assert got.kept == ["on_tp", "exit_tp"] and asked == ["fentry", "ksyscall", "tracepoint"]
    assert got.notes == ["entry to syscall unlinkat: loads 'on_tp' (tracepoint); not 'on_fentry' (fentry): this "
                         "kernel does not load or attach fentry programs at __x64_sys_unlinkat; not 'on_kprobe' "
                         "(ksyscall): this kernel has no kprobes"]


def test_no_answer_counts_as_yes_and_a_refusal_moves_on():
    probe, _ = kernel(fentry=None)  # a module's function: vmlinux BTF cannot tell
    assert choice.choose_twins(TRIO, probe=probe).kept[0] == "on_fentry"
    got = choice.choose_twins(TRIO, {"on_fentry": "the kernel refused it (EPERM)"}, probe=probe)
    assert got.kept[0] == "on_kprobe"
    assert "not 'on_fentry' (fentry): the kernel refused it (EPERM)" in got.notes[0]


def test_when_nothing_fits_the_best_untried_one_loads_to_say_why():
    probe, _ = kernel(fentry=False, ksyscall=False, tracepoint=False)
    assert choice.choose_twins(TRIO, probe=probe).kept[0] == "on_fentry"
    assert choice.choose_twins(TRIO, {"on_fentry": "refused"}, probe=probe).kept[0] == "on_kprobe"


def test_tracepoint_twins_and_programs_on_other_events():
    probe, _ = kernel(tp_btf=False)
    got = choice.choose_twins(SWITCH, probe=probe)
    assert got.kept == ["sw_raw", "wakeup", "wakeup_new"]  # the wakeups have no twin: both load


def test_programs_of_one_type_on_one_event_load_together():
    programs = [("a", "tracepoint/syscalls/sys_exit_openat"), ("a__compat", "tracepoint/syscalls/sys_exit_openat"),
                ("b", "kprobe/do_sys_open"), ("c", "uprobe/bin/bash:readline")]
    probe, asked = kernel()
    got = choice.choose_twins(programs, probe=probe)
    assert got.kept == ["a", "a__compat", "b", "c"] and got.notes == [] and asked == []


def test_fallback_only_where_a_twin_of_another_type_is_left():
    assert choice.fallback("on_fentry", TRIO)
    assert not choice.fallback("exit_tp", TRIO)
    assert not choice.fallback("nope", TRIO)


NAMES = ["on_fentry", "on_kprobe", "on_tp"]


def test_select_only_and_skip():
    assert choice.select(NAMES, ["on_tp", "on_fentry"], None) == ["on_fentry", "on_tp"]
    assert choice.select(NAMES, None, ["on_fentry"]) == ["on_kprobe", "on_tp"]
    assert choice.select(NAMES, None, None) == NAMES


@pytest.mark.parametrize(("only", "skip", "message"), [
    (["on_tp", "nope"], None, "--only: no program named 'nope' in this package (programs: on_fentry, on_kprobe, "
                              "on_tp)"),
    (None, ["x\x1b[2J"], "--skip: no program named 'x\\x1b[2J' in this package"),
    (None, NAMES, "--skip leaves no program to load"),
])
def test_select_refuses_in_one_line(only, skip, message):
    with pytest.raises(UsageError) as e:
        choice.select(NAMES, only, skip)
    assert message in str(e.value) and "\n" not in str(e.value)


MAPS = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#define ARRAY(name) struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); \
    __type(value, long); } name SEC(".maps")
ARRAY(shared);
ARRAY(mine);
ARRAY(texts);
ARRAY(nobody);
static __attribute__((noinline)) int helper(int k) { long *v = bpf_map_lookup_elem(&texts, &k); return v ? 1 : 0; }
SEC("tp_btf/sched_switch") int a(void *ctx)
{ int k = 0; long *v = bpf_map_lookup_elem(&shared, &k); long *w = bpf_map_lookup_elem(&mine, &k);
  return (v ? 1 : 0) + (w ? 1 : 0); }
SEC("raw_tp/sched_switch") int b(void *ctx) { int k = 0; long *v = bpf_map_lookup_elem(&shared, &k); return v ? 1 : 0; }
SEC("raw_tp/sched_switch") int c(void *ctx) { return helper(0); }
char LICENSE[] SEC("license") = "GPL";
"""


def test_maps_of_a_program_and_those_only_unloaded_ones_use(tmp_path: Path, tool):
    tool("clang")
    spec = ObjectSpec(compile_bpf(MAPS, tmp_path).read_bytes())
    by_name = {p.name: p for p in spec.programs}
    assert program_maps(spec, by_name["a"]) == {"shared", "mine"}
    assert program_maps(spec, by_name["b"]) == {"shared"}  # b shares its section with c: only its own relocations
    assert program_maps(spec, by_name["c"]) == {"texts"}  # through its subprogram
    assert choice.unused_maps(spec, {"b", "c"}) == {"mine"}
    assert choice.unused_maps(spec, {"a"}) == {"texts"}
    assert choice.unused_maps(spec, {"a", "b", "c"}) == set()  # `nobody`: no program uses it, user space may
