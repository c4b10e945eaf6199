"""opensnoop's compat programs (for kernels before 5.17: no bpf_loop, no
bpf_task_pt_regs, no bpf_get_current_task_btf), loaded for real on this
kernel by making the helper probe answer as an old kernel would. The same
exact fields as the modern programs, full paths through the bounded walk,
and only the compat programs loaded. tests/kernel matrix runs them on 5.10
for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .helpers import Running, temp_dir
from .test_opensnoop import Child, events_of, in_dir, op

pytestmark = pytest.mark.usefixtures("kernel")

OLD_KERNEL = ("from pyeunomia.kernel import features\n"
              "features.has_helper = lambda prog_type, helper: helper not in (158, 175, 181)\n"
              "import sys\n"
              "from pyeunomia.cli.opensnoop import main\n"
              "from pyeunomia.cli.common import run_command\n"
              "run_command('opensnoop', main, sys.argv[1:])\n")


def loaded(kind: str) -> set[str]:
    out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True, check=True).stdout
    return {p.get("name", "") for p in json.loads(out)}


def snoop_as_old_kernel(args: list[str], *children: Child) -> tuple[list[str], set[str]]:
    tracer = Running([sys.executable, "-c", OLD_KERNEL, "-j", *args], "attached")
    try:
        names = loaded("prog") | loaded("map")
        for child in children:
            child.go()
    finally:
        code = tracer.stop()
    assert code == 0, tracer.stderr_lines
    assert not any("Traceback" in line for line in tracer.stderr_lines)
    return tracer.rest(), names


def test_compat_programs_give_the_same_events(tool):
    tool("bpftool")
    tmp = temp_dir()
    (tmp / "sub").mkdir()
    (tmp / "sub" / "rel.txt").write_text("x")
    ops = [op("openat", str(tmp / "missing"), os.O_RDONLY, 0),
           op("openat2", str(tmp / "made2"), os.O_RDWR | os.O_CREAT, 0o600),
           ["chdir", str(tmp)], op("openat", "sub/rel.txt", os.O_RDONLY | os.O_CLOEXEC, 0)]
    if os.uname().machine == "x86_64":
        ops += [op("creat", str(tmp / "via-creat"), 0o444)]
    child = Child(tmp, ops)
    lines, loaded = snoop_as_old_kernel(["-F"], child)
    # names are cut to 15 characters by the kernel: trace_enter_ope..., trace_exit_open...
    assert any(n.startswith("trace_enter_") for n in loaded), loaded
    assert "args__compat" in loaded  # the compat programs' map, created with them
    by_name = {os.path.basename(str(e["fname"])): e for e in in_dir(events_of(lines, child), tmp)}
    assert by_name["missing"]["ret"] == -2 and by_name["missing"]["flags"] == os.O_RDONLY
    assert by_name["made2"]["syscall"] == "openat2" and by_name["made2"]["mode"] == 0o600
    assert by_name["rel.txt"]["fname"] == str(tmp / "sub" / "rel.txt")  # resolved by the bounded walk
    assert by_name["rel.txt"]["flags"] == os.O_RDONLY | os.O_CLOEXEC and by_name["rel.txt"]["ret"] >= 3
    if os.uname().machine == "x86_64":
        assert by_name["via-creat"]["syscall"] == "creat" and by_name["via-creat"]["mode"] == 0o444


def test_the_compat_map_is_not_created_for_the_modern_programs(tool):
    tool("bpftool")
    tracer = Running([sys.executable, "-m", "pyeunomia.cli.opensnoop", "-j"], "attached")
    try:
        maps, programs = loaded("map"), loaded("prog")
    finally:
        tracer.stop()
    assert "trace_exit_open" in programs and "args__compat" not in maps
