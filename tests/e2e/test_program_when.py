"""`/// @when GLOBAL` on a program (format/extrameta.py): the program loads
only when that bool global is set, so a hook an option needs costs nothing
without it. syscount's sys_enter is there only for -L; ecc refuses a `when`
that names no bool global."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compiler.ecc_programs import compiler  # noqa: F401 - compiler is a fixture

from .helpers import running

pytestmark = pytest.mark.usefixtures("kernel")


def _loaded_program_names(pid: int) -> set[str]:
    """The names of the BPF programs process `pid` holds (fdinfo prog_id ->
    bpftool's name)."""
    ids = set()
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            text = info.read_text()
        except OSError:
            continue
        ids.update(int(line.split()[1]) for line in text.splitlines() if line.startswith("prog_id:"))
    progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                                      check=True).stdout)
    return {p["name"] for p in progs if p["id"] in ids}


@pytest.mark.parametrize(("args", "expected"), [
    ((), {"sys_exit"}),
    (("-L",), {"sys_enter", "sys_exit"}),
])
def test_syscount_loads_its_enter_program_only_for_latency(args: tuple[str, ...], expected: set[str]) -> None:
    with running("ecli", "run", "-v", "syscount", *args) as r:
        assert _loaded_program_names(r.proc.pid) == expected
        r.stop()
    said = "".join(r.stderr_lines)
    assert ("sys_enter: not loaded (measure_latency not set)" in said) == (not args)
    assert f"{len(expected)} program{'s' if len(expected) > 1 else ''} attached" in said


SOURCE = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
const volatile int level = 0;
/// @when level
SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.usefixtures("compiler")
def test_ecc_refuses_a_when_that_is_not_a_bool_global(tmp_path: Path) -> None:
    (tmp_path / "w.bpf.c").write_text(SOURCE)
    done = subprocess.run([sys.executable, "-m", "pyeunomia.cli.ecc", str(tmp_path / "w.bpf.c"), "-o",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "w.bpf.c:6: @when on program 'on_getpid' names 'level', which is not a bool global" in lines[0]
