"""Maps printed as their doc comments ask (docs/writing-tools.md, "Maps:
histograms and tables") over a child's exact write(2) calls: per-key
histograms headed by their decoded key, with counts equal to the writes made
and the unit its option picks; tables sorted, cut at `top` with the total
shown, keys decoded; `ecli run X 1 2` prints exactly two rounds and a
`clear` table only shows each round's own writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import Running, command, temp_dir

pytestmark = pytest.mark.usefixtures("kernel", "compiler")
STAMP = re.compile(r"^\d\d:\d\d:\d\d$")
ROW = re.compile(r"^\s+(\d+) -> (\d+)\s+: (\d+)\s+\|")
LINEAR_ROW = re.compile(r"^\s+(\d+) : (\d+)\s+\|")
# (bytes, times, fd): fd 7 gets 2 of 1 byte, 2 of 10 and 3 of 100; fd 8 one of 5000; fd 9 four of 10
WRITES = ((1, 2, 7), (10, 2, 7), (100, 3, 7), (5000, 1, 8), (10, 4, 9))
CHILD = f"""
import ctypes, os, sys
WRITES = {WRITES!r}
null = os.open("/dev/null", os.O_WRONLY)
for fd in (7, 8, 9):
    os.dup2(null, fd)
os.dup2(os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT), 10)
print("ready", flush=True)
sys.stdin.readline()
for size, n, fd in WRITES:
    for _ in range(n):
        os.write(fd, b"x" * size)
libc = ctypes.CDLL(None, use_errno=True)
for _ in range(3):
    libc.write(99, b"x", 1)  # EBADF
for _ in range(2):
    libc.write(10, ctypes.c_void_p(1), 10)  # EFAULT: a file reads the buffer (/dev/null would not)
"""


def package() -> str:
    return str(built("metamaps") / "package.json")


class Child:
    def __init__(self) -> None:
        scratch = temp_dir() / "efault"
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, "x", str(scratch)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == b"ready\n"
        self.pid = self.proc.pid
        self.comm = Path(f"/proc/{self.pid}/comm").read_text().strip()

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        assert self.proc.wait(30) == 0


def tally(*args: str, runner: tuple[str, ...] = ()) -> tuple[list[str], Child]:
    child = Child()
    ecli = Running([*command("ecli"), "run", *runner, package(), "-p", str(child.pid), *args], "attached")
    try:
        child.go()
    finally:
        assert ecli.stop() == 0, ecli.stderr_lines
    return [line.rstrip("\n") for line in ecli.rest()], child


def block(lines: list[str], header: str) -> list[str]:
    """The lines after `header` up to the next empty one."""
    start = lines.index(header) + 1
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def slots(rows: list[str]) -> dict[int, int]:
    out = {}
    for line in rows[1:]:
        m = ROW.match(line)
        assert m, line
        if int(m.group(3)):
            out[int(m.group(1))] = int(m.group(3))
    return out


def test_per_key_histograms_count_the_writes_under_their_decoded_keys():
    lines, child = tally()
    fd7 = block(lines, f"fd = 7, comm = {child.comm}:")
    assert fd7[0].split() == ["bytes", ":", "count", "distribution"]
    assert slots(fd7) == {0: 2, 8: 2, 64: 3}  # 1 byte in [0, 1], 10 in [8, 15], 100 in [64, 127]
    assert slots(block(lines, f"fd = 8, comm = {child.comm}:")) == {4096: 1}
    assert slots(block(lines, f"fd = 9, comm = {child.comm}:")) == {8: 4}
    linear = block(lines, f"pid = {child.pid}:")
    assert linear[0].split() == ["fd", ":", "count", "distribution"]
    counts = {int(m.group(1)): int(m.group(2)) for m in map(LINEAR_ROW.match, linear[1:]) if m and int(m.group(2))}
    assert counts == {7: 7, 8: 1, 9: 4}


def test_the_unit_option_changes_the_unit():
    lines, child = tally("-K")  # sizes >> 10 in the kernel, shown as kibytes
    fd8 = block(lines, f"fd = 8, comm = {child.comm}:")
    assert fd8[0].split()[0] == "kibytes" and slots(fd8) == {4: 1}  # 5000 >> 10 == 4
    assert slots(block(lines, f"fd = 7, comm = {child.comm}:")) == {0: 7}


def test_tables_are_sorted_cut_at_top_with_the_total_and_keys_decoded():
    lines, _ = tally()
    assert block(lines, "FD WRITES BYTES") == ["7       7   322", "9       4    40", "(the top 2 of 3 rows)"]
    assert block(lines, "ERROR  VALUE") == ["EBADF      3", "EFAULT     2"]


def test_json_carries_the_decoded_keys_units_and_what_was_cut():
    lines, child = tally(runner=("-j",))
    entries = [json.loads(line) for line in lines]
    errors = [(e["key"], e["key_text"], e["value"]) for e in entries if e.get("map") == "errors"]
    assert errors == [(9, "EBADF", 3), (14, "EFAULT", 2)]
    sizes = {e["key_text"]: (e["unit"], e["value"]["slots"][:13]) for e in entries if e.get("map") == "sizes"}
    assert sizes == {f"fd = 7, comm = {child.comm}": ("bytes", [2, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0]),
                     f"fd = 8, comm = {child.comm}": ("bytes", [0] * 12 + [1]),
                     f"fd = 9, comm = {child.comm}": ("bytes", [0, 0, 0, 4] + [0] * 9)}
    perfd = [e for e in entries if e.get("map") == "perfd"]
    assert perfd == [{"map": "perfd", "key": 7, "value": {"count": 7, "bytes": 322}, "key_text": "7"},
                     {"map": "perfd", "key": 9, "value": {"count": 4, "bytes": 40}, "key_text": "9"},
                     {"map": "perfd", "omitted": 1}]


def test_interval_and_count_by_position_print_exactly_that_many_rounds_and_clear_the_table():
    child = Child()
    start = time.monotonic()
    ecli = Running([*command("ecli"), "run", package(), "-p", str(child.pid), "2", "2"], "attached")
    try:
        child.go()  # well before the first round, 2 s after the start
        code = ecli.proc.wait(20)  # it stops by itself after two rounds
    finally:
        ecli.stop()
    took = time.monotonic() - start
    assert code == 0, ecli.stderr_lines
    lines = [line.rstrip("\n") for line in ecli.rest()]
    stamps = [i for i, line in enumerate(lines) if STAMP.match(line)]
    assert len(stamps) == 2 and took < 10, (lines, took)
    first, second = lines[stamps[0]:stamps[1]], lines[stamps[1]:]
    assert "FD WRITES BYTES" in first and "FD WRITES BYTES" not in second  # cleared after the first round
    assert f"fd = 9, comm = {child.comm}:" in first and f"fd = 9, comm = {child.comm}:" in second  # kept


def test_the_runners_count_option_and_its_refusal_without_an_interval():
    child = Child()
    ecli = Running([*command("ecli"), "run", "-i", "1", "--count", "1", package(), "-p", str(child.pid)], "attached")
    try:
        child.go()
        code = ecli.proc.wait(20)
    finally:
        ecli.stop()
    assert code == 0, ecli.stderr_lines
    assert sum(bool(STAMP.match(line)) for line in ecli.rest()) == 1
    done = subprocess.run([*command("ecli"), "run", "--count", "2", package()], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == (
        "ecli: error: --count needs an interval: give -i SECONDS (or the package's interval argument)\n")
