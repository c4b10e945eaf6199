"""The one attach policy: which programs a kernel can take. Unit-level with a
fake tracefs (the kernel side is covered by every e2e test, which all load
through it); tests/e2e/test_attach_policy.py checks that ecli and opensnoop
load the same programs for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyeunomia.errors import KernelError
from pyeunomia.format.objspec import ProgramSpec
from pyeunomia.runner import attach
from pyeunomia.source import open_package


@pytest.fixture
def tracefs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(attach, "TRACEFS", str(tmp_path))
    monkeypatch.setattr(attach, "ensure_tracefs", lambda: None)
    monkeypatch.setattr(attach.features, "require_bpf_privileges", lambda: None)
    return tmp_path


def events(root: Path, *names: str) -> None:
    for name in names:
        (root / "events" / name).mkdir(parents=True)


def test_programs_whose_tracepoint_is_missing_are_not_loaded(tracefs: Path):
    programs = open_package("opensnoop").spec.programs
    events(tracefs, "syscalls/sys_exit_openat", "syscalls/sys_exit_openat2")  # arm64: no open, no creat
    loadable = attach.loadable_programs(programs)
    assert loadable is not None
    assert sorted(p.section for p in programs if p.name in loadable) == [
        "tracepoint/syscalls/sys_exit_openat", "tracepoint/syscalls/sys_exit_openat2"]


def test_all_present_or_none_present_loads_everything(tracefs: Path):
    programs = open_package("opensnoop").spec.programs
    assert attach.loadable_programs(programs) is None  # none present: the load itself says why
    events(tracefs, *(p.section.split("/", 1)[1] for p in programs))
    assert attach.loadable_programs(programs) is None


def test_programs_without_tracepoints_are_left_alone(tracefs: Path):
    programs = [ProgramSpec("a", "kprobe/do_sys_open"), ProgramSpec("b", "xdp")]
    assert attach.loadable_programs(programs) is None


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
