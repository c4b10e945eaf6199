"""Twins (one kernel event hooked by several attach types, as libbpf-tools
writes them) loaded for real: one program per event, the best this kernel
takes, each event reported once and by the chosen twin (its `via` field);
--only and --skip; a twin the kernel refuses at load time gives way to the
next. tests/e2e/programs/twins; kernel_matrix runs it where fentry and
kprobes work."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from pyeunomia.kernel import features
from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids
from .helpers import Running, command, running

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

VIA_FENTRY, VIA_KPROBE, VIA_TRACEPOINT, VIA_TP_BTF, VIA_RAW_TP = range(5)
UNLINKS = 3
WRAPPER = {"x86_64": "__x64_sys_unlinkat", "aarch64": "__arm64_sys_unlinkat"}.get(os.uname().machine, "")
# Python with the fentry probe answering yes: the kernel itself must then refuse (this VM: EPERM)
PROBE_SAYS_YES = ("from pyeunomia.kernel import features\n"
                  "features.can_trace = lambda kind, target: True\n"
                  "import sys\n"
                  "from pyeunomia.cli.ecli import main\n"
                  "from pyeunomia.cli.common import run_command\n"
                  "run_command('ecli', main, sys.argv[1:])\n")


def package() -> str:
    return str(built("twins") / "package.json")


def expected_unlink_twin() -> int:
    """What this kernel takes, asked as the C front-ends ask it."""
    if features.can_trace("fentry", WRAPPER):
        return VIA_FENTRY
    return VIA_KPROBE if features.has_kprobes() else VIA_TRACEPOINT


def unlink_some(tag: str, missing: bool = False) -> list[str]:
    """unlinkat(2) of UNLINKS fresh files (os.unlink with dir_fd: glibc's
    unlink() is another system call), and with `missing` of one name that
    is not there (ENOENT) last; their names."""
    folder = tempfile.mkdtemp(prefix="pyeu-twins-")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    names = [f"twin-{tag}-{os.getpid()}-{i}" for i in range(UNLINKS)]
    try:
        for name in names:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
            os.unlink(name, dir_fd=fd)
        if missing:
            names.append(f"twin-{tag}-{os.getpid()}-missing")
            try:
                os.unlink(names[-1], dir_fd=fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)
        os.rmdir(folder)
    return names


def bpftool_names(kind: str) -> dict[int, str]:
    out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: p.get("name", "") for p in json.loads(out)}


def test_one_twin_per_event_and_every_event_once(tool):
    tool("bpftool")
    want = expected_unlink_twin()
    before_progs, before_maps = bpftool_names("prog"), bpftool_names("map")
    with running("ecli", "run", "-v", "-j", package()) as ecli:
        progs = {n for i, n in bpftool_names("prog").items() if i not in before_progs}
        maps = {n for i, n in bpftool_names("map").items() if i not in before_maps}
        names = unlink_some("once", missing=True)
        lines = ecli.wait_for(lambda line: f'"{names[-1]}"' in line)
        time.sleep(0.3)  # a second twin's copy would follow at once
        assert ecli.stop() == 0
        seen = [json.loads(line) for line in lines + ecli.rest() if line.startswith("{")]
    err = "".join(ecli.stderr_lines)
    ours = [e for e in seen if e["name"] in names]
    assert sorted(e["name"] for e in ours) == sorted(names), err  # each once
    assert {e["via"] for e in ours} == {want} and {e["pid"] for e in ours} == {os.getpid()}
    failed = [e for e in seen if e["exit"] and e["pid"] == os.getpid() and e["ret"] == -errno.ENOENT]
    assert [e["via"] for e in failed] == [want], seen  # the return of the missing one, once, by its twin
    entry, exit_ = {VIA_FENTRY: ("unlink_fentry", "unlink_fexit"), VIA_KPROBE: ("unlink_kprobe", "unlink_kretprobe"),
                    VIA_TRACEPOINT: ("unlink_tracepoint", "unlink_tp_exit")}[want]
    assert f"entry to syscall unlinkat: loads '{entry}'" in err, err
    assert f"return from syscall unlinkat: loads '{exit_}'" in err, err
    assert "twins: 3 programs attached" in err  # one per event, of nine
    assert sorted(n for n in progs if n.startswith("unlink_")) == sorted((entry, exit_)), progs
    if want != VIA_FENTRY:
        assert "fentry_hits" not in maps  # only the fentry twin uses it
    assert "events" in maps


def test_skip_moves_to_the_next_twin():
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys, time\nsys.stdin.readline()\n"
                                "[time.sleep(0.01) for _ in range(5)]"], stdin=subprocess.PIPE)
    try:
        with running("ecli", "run", "-v", "-j", "--skip", "switch_tp_btf", package(),
                     "--target_pid", str(sleeper.pid)) as ecli:
            assert sleeper.stdin is not None
            sleeper.stdin.write(b"go\n")
            sleeper.stdin.flush()
            events = ecli.json_events(lambda e: e["pid"] == sleeper.pid, count=5)
    finally:
        sleeper.wait(10)
    err = "".join(ecli.stderr_lines)
    assert {e["via"] for e in events} == {VIA_RAW_TP} and {e["exit"] for e in events} == {0}, events
    assert "tracepoint sched_switch: loads 'switch_raw_tp' (raw_tp); skips 'switch_tracepoint'" in err, err


def test_only_loads_exactly_the_named_programs():
    with running("ecli", "run", "-j", "--only", "unlink_tracepoint", package()) as ecli:
        names = unlink_some("only")
        events = ecli.json_events(lambda e: e["name"] in names, count=UNLINKS)
    assert {e["via"] for e in events} == {VIA_TRACEPOINT} and {e["exit"] for e in events} == {0}
    assert any("twins: 1 program attached" in line for line in ecli.stderr_lines), ecli.stderr_lines


@pytest.mark.parametrize(("flag", "value"), [("--only", "nope"), ("--skip", "unlink_fentry,nope")])
def test_unknown_program_name_is_one_line(flag, value):
    before = loaded_prog_ids()
    done = subprocess.run([*command("ecli"), "run", flag, value, package()], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"ecli: error: {flag}: no program named 'nope' in this package (programs: unlink_fentry, unlink_kprobe, "
        "unlink_tracepoint, unlink_fexit, unlink_kretprobe, unlink_tp_exit, switch_tp_btf, switch_raw_tp, "
        "switch_tracepoint)"], done.stderr
    assert_nothing_new_loaded(before)


def test_a_twin_the_kernel_refuses_gives_way():
    """The probe made to say yes to fentry: the kernel's refusal at load
    time must not fail the run, its twin loads instead, and -v says why."""
    if features.can_trace("fentry", WRAPPER):
        pytest.skip("this kernel loads fentry programs: nothing refuses it")
    ecli = Running([sys.executable, "-c", PROBE_SAYS_YES, "run", "-v", "-j", package()], "attached")
    try:
        names = unlink_some("refused")
        events = ecli.json_events(lambda e: e["name"] in names, count=UNLINKS)
    finally:
        assert ecli.stop() == 0
    err = "".join(ecli.stderr_lines)
    want = VIA_KPROBE if features.has_kprobes() else VIA_TRACEPOINT
    assert {e["via"] for e in events} == {want}
    assert "not 'unlink_fentry' (fentry): this kernel does not support fentry programs: the kernel refused " \
           "to load 'unlink_fentry'" in err, err
    assert "Traceback" not in err
