"""A program's options from its doc comments (docs/writing-tools.md,
"Globals: options"), run against the real kernel: converted values filter in
the kernel (a signal name, a cgroup path), every converter's value reaches
the program exactly, a bool with a short name is a flag, bad values are one
line and exit status 2 before anything loads, --help starts with the
description, and `ecli list` shows each tool's first sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.decoders.cgroup import cgroup2_root
from pyeunomia.source import builtin_packages
from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import Running, command, run

pytestmark = pytest.mark.usefixtures("kernel", "compiler")
NO_SUCH_PID = 999_999  # not running: checked in free_pid()

CHILD = """
import os, signal, sys
cgroup = sys.argv[1]
if cgroup:
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
print("ready", flush=True)
sys.stdin.readline()
os.kill(os.getpid(), signal.SIGCONT)
os.kill(os.getpid(), signal.SIGWINCH)
try:
    os.kill(int(sys.argv[2]), signal.SIGCONT)
except ProcessLookupError:
    pass
"""


def package() -> str:
    return str(built("metaopts") / "package.json")


def free_pid() -> int:
    pid = NO_SUCH_PID
    while Path(f"/proc/{pid}").exists():
        pid -= 1
    return pid


class Child:
    """A process that sends three kill()s when told: SIGCONT and SIGWINCH to
    itself, SIGCONT to a pid that does not exist (ESRCH)."""

    def __init__(self, cgroup: str = "") -> None:
        self.missing = free_pid()
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, cgroup, str(self.missing)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == b"ready\n"
        self.pid = self.proc.pid

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        assert self.proc.wait(30) == 0


def events(args: list[str], children: list[Child], count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The JSON events (and the lines at exit) of a run over the children's kills."""
    ecli = Running([*command("ecli"), "run", "-j", package(), *args], "attached")
    try:
        for c in children:
            c.go()
        pids = {c.pid for c in children}
        found = ecli.json_events(lambda e: e.get("pid") in pids, count=count, timeout=15)
        time.sleep(0.3)  # anything more would show up now
    finally:
        assert ecli.stop() == 0, ecli.stderr_lines
    rest = [json.loads(line) for line in ecli.rest()]
    extra = [e for e in rest if e.get("pid") in {c.pid for c in children}]
    return found + extra, rest


def test_a_signal_name_is_converted_and_filters_in_the_kernel():
    child = Child()
    found, rest = events(["-p", str(child.pid), "-s", "CONT"], [child], count=2)
    assert [(e["tpid"], e["sig"], e["ret"]) for e in found] == [(child.pid, 18, 0), (child.missing, 18, -3)]
    [seen] = [e["value"] for e in rest if "global" in e]
    assert (seen["size"], seen["uid"]) == (1024, 7)  # a default in the option's syntax ("1K"), and the object's


def test_a_global_given_by_position():
    child = Child()
    found, _ = events([str(child.pid), "-s", "CONT"], [child], count=2)  # @positional ["targ_pid"]
    assert {e["pid"] for e in found} == {child.pid} and len(found) == 2


def test_a_bool_with_a_short_name_is_a_flag():
    child = Child()
    found, _ = events(["-p", str(child.pid), "-x"], [child], count=1)
    assert [(e["tpid"], e["sig"], e["ret"]) for e in found] == [(child.missing, 18, -3)]  # ESRCH only
    child = Child()
    found, _ = events(["-p", str(child.pid), "--no-failed", "--signal", "SIGWINCH"], [child], count=1)
    assert [(e["tpid"], e["sig"], e["ret"]) for e in found] == [(child.pid, 28, 0)]


def test_a_cgroup_path_is_converted_and_filters_a_child_placed_there():
    root = cgroup2_root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy is mounted")  # a kernel feature
    path = Path(root) / f"pyeu-meta-{os.getpid()}"
    path.mkdir()
    try:
        inside, outside = Child(str(path)), Child()
        found, _ = events(["-c", str(path), "-s", "CONT"], [outside, inside], count=2)
        assert [(e["pid"], e["tpid"], e["ret"], e["cgroup"]) for e in found] == [
            (inside.pid, inside.pid, 0, path.stat().st_ino), (inside.pid, inside.missing, -3, path.stat().st_ino)]
        # the same cgroup relative to the mount
        inside = Child(str(path))
        found, _ = events(["--cgroup", path.name, "-s", "18"], [inside], count=2)
        assert {e["cgroup"] for e in found} == {path.stat().st_ino} and len(found) == 2
    finally:
        path.rmdir()


def test_every_converter_gives_the_kernel_its_value():
    child = Child()
    _, rest = events(["-p", str(child.pid), "--min", "1.5ms", "--size", "4K", "--user", "nobody", "--syscall",
                      "openat", "--errno", "EPERM", "--iface", "lo", "--mode", "read,EXEC"], [child], count=3)
    seen = [e for e in rest if "global" in e]
    nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout)
    assert seen == [{"global": "seen", "value": {"min_ns": 1_500_000, "size": 4096, "uid": nobody, "nr": 257,
                                                  "err": 1, "ifindex": 1, "flags": 5}}]


@pytest.mark.parametrize(("args", "says"), [
    (["-s", "BOGUS"], "ecli: error: argument -s/--signal/--targ_sig: 'BOGUS' is not a signal: give a name "
                      "(TERM, SIGKILL) or a number"),
    (["--cgroup", "/no/such/cgroup"], "ecli: error: argument -c/--cgroup/--targ_cgroup: /no/such/cgroup does not "
                                      "exist: give a cgroup v2 directory"),
    (["--min", "soon"], "ecli: error: argument --min/--targ_min_ns: 'soon' is not a duration: give a number with a "
                        "unit (10ms, 2s, 500us) or a number of ns"),
    (["--mode", "read,fly"], "ecli: error: argument --mode/--targ_flags: 'fly' is not one of the flags: give names "
                             "from EXEC, READ, WRITE separated by commas"),
    (["--user", "no-such-user-x"], "ecli: error: argument --user/--targ_uid: no user is named 'no-such-user-x'"),
])
def test_a_bad_value_is_one_line_and_status_2_with_nothing_loaded(args: list[str], says: str):
    done = run("ecli", "run", package(), *args)
    assert done.returncode == 2
    assert done.stderr.startswith(says) and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""


def test_help_starts_with_the_description_and_shows_names_metavars_and_syntax():
    done = run("ecli", "run", package(), "--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("Trace kill(2) calls filtered in the kernel by converted options.")
    flat = " ".join(text.split())
    assert "-p PID, --pid PID, --targ_pid PID Trace only this process id (0: all) (__u32, default: 0)" in flat
    assert "-s SIG, --signal SIG, --targ_sig SIG Trace only this signal (a signal: TERM, SIGKILL, 9, __s32, " \
           "default: -1)" in flat
    assert "-c CGROUP, --cgroup CGROUP" in flat and "(a cgroup v2 directory (path), __u64" in flat
    assert "-x, --failed, --no-failed" in flat
    assert "--size BYTES, --targ_size BYTES A size, echoed (a size: 512, 4K, 1M, __u64, default: 1024)" in flat
    assert "positional arguments: PID as --pid" in flat


def test_list_shows_each_tool_with_its_first_sentence_aligned():
    done = run("ecli", "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == sorted(builtin_packages())
    width = max(len(n) for n in builtin_packages())
    assert all(line[width:width + 2] == "  " and line[width + 2] != " " for line in lines)
    assert "opensnoop".ljust(width) + "  Trace every file open on the machine: open, openat, openat2 and creat." \
        in lines


def test_the_exporter_converts_option_values_as_ecli_does():
    from pyeunomia.errors import ConfigError
    from tests.exporter.util import plan_of

    def config(options: str) -> str:
        return (f"programs:\n  - name: metaopts\n    compiled_ebpf_filename: {package()}\n    options: {options}\n"
                "    metrics:\n      counters:\n        - name: kills\n          labels:\n            - name: sig\n")
    plan = plan_of(config("{signal: CONT, mode: 'read,write', min: 2ms, targ_uid: 0}"))
    assert plan.values == {"targ_sig": 18, "targ_flags": 3, "targ_min_ns": 2_000_000, "targ_uid": 0}
    with pytest.raises(ConfigError, match="targ_sig: 'HUP2' is not a signal: give a name"):
        plan_of(config("{signal: HUP2}"))
