"""Each event buffer decoded with its own struct, or refused, against the real
kernel: a header whose first struct is a helper (bcc's opensnoop.h style),
two ring buffers with different structs (one named by `/// @export`, one
told by size), a deliberate size mismatch (hex, one stderr line, a count at
exit), and upstream's own multiple-export-types packages."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import UPSTREAM, running, temp_dir, unique_executable

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

# A child that prints its pid, waits for a line, then opens (creating) and
# closes each path given, and waits for a second line before it exits.
CHILD = r"""
import os, sys
print(os.getpid(), flush=True)
sys.stdin.readline()
fds = []
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    fds.append(fd)
    os.close(fd)
print(" ".join(map(str, fds)), flush=True)
sys.stdin.readline()
"""


class Child:
    def __init__(self, paths: list[str]):
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, *paths], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.pid = int(self.proc.stdout.readline())

    def act(self) -> list[int]:
        """Open and close the paths now; the fds they got."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return [int(fd) for fd in self.proc.stdout.readline().split()]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("done\n", timeout=10)


def paths(n: int) -> list[str]:
    base = Path(tempfile.mkdtemp(prefix="pyeu-export-"))
    return [str(base / f"f{i}") for i in range(n)]


def test_a_header_with_a_helper_struct_first_decodes_the_event():
    """bcc's opensnoop.h declares struct args_t before struct event: events are
    the open events, not {"fname": ..., "flags": ...}."""
    names = paths(3)
    child = Child(names)
    try:
        with running("ecli", "run", "--json", str(built("helperfirst") / "package.json"),
                     "--targ_pid", str(child.pid)) as ecli:
            fds = child.act()
            events = ecli.json_events(lambda e: e.get("pid") == child.pid, count=3)
            code = ecli.stop()
    finally:
        child.close()
    assert code == 0
    assert [(e["fname"], e["ret"], e["flags"]) for e in events] == [
        (n, fd, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC) for n, fd in zip(names, fds, strict=True)]
    assert all(e["comm"] == "python3"[:15] or e["comm"].startswith("python") for e in events)
    assert set(events[0]) == {"ts", "pid", "ret", "flags", "comm", "fname"}
    assert not [line for line in ecli.stderr_lines if "hex" in line or "guess" in line]


def test_two_ring_buffers_each_with_its_own_struct():
    names = paths(3)
    child = Child(names)
    try:
        with running("ecli", "run", "--json", str(built("tworings") / "package.json"),
                     "--targ_pid", str(child.pid)) as ecli:
            fds = child.act()
            events = ecli.json_events(lambda e: e.get("pid") == child.pid, count=6)
    finally:
        child.close()
    opens = [e for e in events if "fname" in e]
    closes = [e for e in events if "fd" in e]
    assert [(e["fname"], e["dfd"]) for e in opens] == [(n, -100) for n in names]  # AT_FDCWD
    assert [e["fd"] for e in closes] == fds
    assert all(set(e) == {"pid", "fd", "ts"} and e["ts"] > 0 for e in closes)


def test_two_ring_buffers_as_a_table_name_their_map():
    names = paths(1)
    child = Child(names)
    try:
        with running("ecli", "run", str(built("tworings") / "package.json"), "--targ_pid", str(child.pid)) as ecli:
            (fd,) = child.act()
            lines = ecli.wait_for(lambda line: line.startswith("closes ") and str(child.pid) in line.split())
            if not any(names[0] in line for line in lines):
                lines += ecli.wait_for(lambda line: line.startswith("opens ") and names[0] in line)
    finally:
        child.close()
    assert lines[0].split() == ["opens", "time", "pid", "dfd", "fname"]
    assert lines[1].split() == ["closes", "time", "pid", "fd", "ts"]
    opened = next(line.split() for line in lines if line.startswith("opens ") and names[0] in line)
    closed = next(line.split() for line in lines if line.startswith("closes ") and str(child.pid) in line)
    assert opened[2:] == [str(child.pid), "-100", names[0]]
    assert closed[2:4] == [str(child.pid), str(fd)]


def test_a_size_mismatch_prints_hex_once_said_and_counted():
    names = paths(3)
    child = Child(names)
    try:
        with running("ecli", "run", "--json", str(built("misfit") / "package.json"),
                     "--targ_pid", str(child.pid)) as ecli:
            fds = child.act()
            events = ecli.json_events(lambda e: True, count=6)
            code = ecli.stop()
    finally:
        child.close()
    assert code == 0
    raw = [e for e in events if "data" in e]
    decoded = [e for e in events if "data" not in e]
    # struct wide { int pid; int fd; u64 count; u64 extra; }: 24 bytes, never decoded as struct event
    expect = [(child.pid.to_bytes(4, "little") + fd.to_bytes(4, "little") + n.to_bytes(8, "little")
               + (0x1122334455667788).to_bytes(8, "little")).hex() for n, fd in enumerate(fds, 1)]
    assert raw == [{"map": "wrong", "size": 24, "data": h} for h in expect]
    # the perf array carries struct event itself: decoded, its padding accepted
    assert decoded == [{"pid": child.pid, "fd": fd, "count": n} for n, fd in enumerate(fds, 1)]
    said = [line for line in ecli.stderr_lines if "map 'wrong'" in line]
    assert said == [
        "ecli: map 'wrong': a 24-byte record is not struct event (16 bytes): printed in hex, never decoded as it; "
        "name the struct it carries with '/// @export STRUCT' above the map and rebuild\n",
        "ecli: map 'wrong': 3 records did not fit struct event (16 bytes) and were printed in hex\n"]


def test_upstreams_multiple_export_ringbuf_package():
    """bpf-loader-rs's own asset: rb_exec carries struct event_exec and rb_exit
    struct event_exit (each "export_config": {"btf_type_id": N})."""
    exe = unique_executable(temp_dir())
    with running("ecli", "run", "--json", str(UPSTREAM / "multiple_export_ringbuf.json")) as ecli:
        done = subprocess.run([str(exe)], check=True)
        assert done.returncode == 0
        events = ecli.json_events(lambda e: e.get("comm") == exe.name, count=2)
    exec_event = next(e for e in events if "filename" in e)
    exit_event = next(e for e in events if "duration_ns" in e)
    assert exec_event["filename"] == str(exe) and exec_event["ppid"] == os.getpid()
    assert set(exec_event) == {"pid", "ppid", "comm", "filename"}
    assert exit_event["pid"] == exec_event["pid"] and exit_event["exit_code"] == 0
    assert set(exit_event) == {"duration_ns", "pid", "ppid", "exit_code", "comm"}


def test_upstreams_custom_members():
    exe = unique_executable(temp_dir())
    with running("ecli", "run", "--json", str(UPSTREAM / "multiple_custom_members.json")) as ecli:
        subprocess.run([str(exe)], check=True)
        (event,) = ecli.json_events(lambda e: e.get("comm?") == exe.name)
    assert event == {"pid": event["pid"], "ppid": os.getpid(), "comm?": exe.name, "fname": str(exe)}
    assert event["pid"] > 0
