"""The one attach policy: which programs a kernel can take. Unit-level with a
fake tracefs (the kernel side is covered by every e2e test, which all load
through it); tests/e2e/test_attach_policy.py checks that ecli and opensnoop
load the same programs for real."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pyeunomia.errors import KernelError
from pyeunomia.format.insns import program_helpers
from pyeunomia.format.objspec import ObjectSpec, ProgramSpec
from pyeunomia.runner import attach
from pyeunomia.source import open_package

from ..e2e.helpers import compile_bpf

BPF_FUNC_LOOP, BPF_FUNC_GET_CURRENT_PID_TGID = 181, 14
TRACEPOINT = 5


@pytest.fixture
def tracefs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(attach, "TRACEFS", str(tmp_path))
    monkeypatch.setattr(attach, "ensure_tracefs", lambda: None)
    monkeypatch.setattr(attach.features, "require_bpf_privileges", lambda: None)
    return tmp_path


def events(root: Path, *names: str) -> None:
    for name in names:
        (root / "events" / name).mkdir(parents=True, exist_ok=True)


def test_programs_whose_tracepoint_is_missing_are_not_loaded(tracefs: Path):
    spec = open_package("opensnoop").spec
    programs = [p for p in spec.programs if not p.name.endswith(attach.COMPAT_SUFFIX)]
    events(tracefs, *(p.section.split("/", 1)[1] for p in spec.programs if "openat" in p.section))  # arm64
    loadable = attach.loadable_programs(SimpleNamespace(programs=programs), {})
    assert loadable is not None
    assert sorted(p.section for p in programs if p.name in loadable) == [
        "tracepoint/syscalls/sys_exit_openat", "tracepoint/syscalls/sys_exit_openat2"]


def test_all_present_or_none_present_loads_everything(tracefs: Path):
    spec = SimpleNamespace(programs=[p for p in open_package("opensnoop").spec.programs
                                     if not p.name.endswith(attach.COMPAT_SUFFIX)])
    assert attach.loadable_programs(spec, {}) is None  # none present: the load itself says why
    events(tracefs, *(p.section.split("/", 1)[1] for p in spec.programs))
    assert attach.loadable_programs(spec, {}) is None


def test_programs_without_tracepoints_are_left_alone(tracefs: Path):
    programs = [ProgramSpec("a", "kprobe/do_sys_open"), ProgramSpec("b", "xdp")]
    assert attach.loadable_programs(SimpleNamespace(programs=programs), {}) is None


ALTERNATIVES = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static long step(__u32 i, void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_exit_openat") int prog(void *ctx)
{ bpf_loop(4, step, 0, 0); return 0; }
SEC("tracepoint/syscalls/sys_exit_openat") int prog__compat(void *ctx)
{ return bpf_get_current_pid_tgid() == 0; }
SEC("tracepoint/syscalls/sys_enter_openat") int enter__compat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_openat") int alone(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture
def alternatives(tmp_path: Path, tool) -> ObjectSpec:  # type: ignore[no-untyped-def]
    tool("clang")
    return ObjectSpec(compile_bpf(ALTERNATIVES, tmp_path).read_bytes())


def test_helpers_are_read_from_the_instructions(alternatives: ObjectSpec):
    by_name = {p.name: p for p in alternatives.programs}
    assert BPF_FUNC_LOOP in program_helpers(alternatives, by_name["prog"])
    assert program_helpers(alternatives, by_name["prog__compat"]) == {BPF_FUNC_GET_CURRENT_PID_TGID}
    assert program_helpers(alternatives, by_name["alone"]) == set()


@pytest.mark.parametrize(("has_loop", "expected"), [
    (True, ["prog", "alone"]),
    (False, ["prog__compat", "enter__compat", "alone"]),  # the companion comes with its alternative
])
def test_a_compat_alternative_replaces_a_program_the_kernel_cannot_take(alternatives, tracefs, monkeypatch,
                                                                         has_loop, expected):
    asked = []

    def has_helper(prog_type: int, helper: int) -> bool:
        asked.append((prog_type, helper))
        return has_loop or helper != BPF_FUNC_LOOP
    monkeypatch.setattr(attach.features, "has_helper", has_helper)
    events(tracefs, "syscalls/sys_exit_openat", "syscalls/sys_enter_openat")
    types = {p.name: TRACEPOINT for p in alternatives.programs}
    assert sorted(attach.loadable_programs(alternatives, types) or []) == sorted(expected)
    assert asked == [(TRACEPOINT, BPF_FUNC_LOOP)]  # only what tells the two apart is probed


def test_teardown_runs_every_undo_step_last_first_and_raises_the_first_failure():
    done: list[str] = []
    teardown = attach.Teardown()

    def step(name: str, fail: bool = False):
        def run() -> None:
            done.append(name)
            if fail:
                raise KernelError(f"{name} failed")
        return run
    teardown.steps += [step("qdisc"), step("filter one", fail=True), step("filter two", fail=True)]
    with pytest.raises(KernelError, match="filter two failed"):
        teardown.undo()
    assert done == ["filter two", "filter one", "qdisc"]
    teardown.undo()  # nothing left to do
    assert done == ["filter two", "filter one", "qdisc"]
