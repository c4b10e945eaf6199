"""Programs that keep their results in maps and globals (libbpf-tools'
style): printed at exit, decoded, histograms drawn, keys sorted as numbers,
with exact counts of the write(2) calls a child makes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from ..conftest import EUNOMIA_EXAMPLES
from .helpers import Running, command, run, running, temp_dir

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

EXAMPLES = EUNOMIA_EXAMPLES
FD = 5
WRITES = ((1, 2), (11, 3), (15, 1), (14157, 4))  # (bytes, times): keys that sort differently as strings
CALLS = sum(n for _size, n in WRITES)
BYTES = sum(size * n for size, n in WRITES)
CHILD = f"""
import os, sys
os.dup2(os.open("/dev/null", os.O_WRONLY), {FD})
sys.stdin.readline()
for size, n in {WRITES!r}:
    for _ in range(n):
        os.write({FD}, b"x" * size)
"""


def package() -> str:
    return str(built("maptally") / "package.json")


class Child:
    """A process that makes exactly WRITES write() calls when told to."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE)
        self.pid = self.proc.pid

    def go(self) -> str:
        """Make the writes; its comm, read while it runs."""
        comm = Path(f"/proc/{self.pid}/comm").read_text().strip()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        assert self.proc.wait(30) == 0
        return comm


def tally(*args: str) -> tuple[list[str], str, int, str]:
    """(stdout lines, stderr, child pid, child comm) of a run over the child's writes, stopped by Ctrl-C."""
    child = Child()
    ecli = Running([*command("ecli"), "run", *args, package(), "--target_pid", str(child.pid)], "attached")
    try:
        comm = child.go()
    finally:
        code = ecli.stop()
    assert code == 0, ecli.stderr_lines
    return [line.rstrip("\n") for line in ecli.rest()], "".join(ecli.stderr_lines), child.pid, comm


def hist_rows(lines: list[str], start: int) -> dict[str, int]:
    """Non-zero rows of the histogram drawn below lines[start]: label -> count."""
    rows = {}
    for line in lines[start + 2:]:
        m = re.fullmatch(r"\s+(\d+(?: -> \d+)?)\s+: (\d+)\s+\|[* ]{40}\|", line)
        if m is None:
            break
        if int(m.group(2)):
            rows[m.group(1).replace(" ", "")] = int(m.group(2))
    return rows


def test_results_at_exit_as_text():
    lines, err, pid, comm = tally("-v")
    # per-key counts, keys in numeric order (as strings 14157 would come before 15)
    assert [line for line in lines if line.startswith("@sizes[")] == \
        [f"@sizes[{size}]: {n}" for size, n in WRITES]
    assert f"@data[{pid}]: count={CALLS}, bytes={BYTES}, comm={comm}" in lines
    assert "@calls[0]: 10" in lines and "@calls[1]: 10" in lines  # per-CPU values added up
    # a .bss array of counters: only the filled element
    assert [line for line in lines if line.startswith("@fd_writes")] == [f"@fd_writes[{FD}]: {CALLS}"]
    # a per-process log2 histogram keyed by a struct
    at = lines.index(f"@hists[pid={pid}, comm={comm}]:")
    assert lines[at + 1].split() == ["(unit)", ":", "count", "distribution"]
    assert hist_rows(lines, at) == {"0->1": 2, "8->15": 4, "8192->16383": 4}
    # a linear histogram in .bss: slot i counts writes of i bytes
    at = lines.index("@bytes_linear_hist:")
    assert hist_rows(lines, at) == {"1": 2, "11": 3, "15": 1}
    # state kept between enter and exit is not a result
    assert not any(line.startswith("@start") for line in lines)
    assert "map 'start' is not printed: state kept between events" in err


def test_results_at_exit_as_json():
    lines, _err, pid, comm = tally("-j")
    entries = [json.loads(line) for line in lines]
    sizes = [(e["key"], e["value"]) for e in entries if e.get("map") == "sizes"]
    assert sizes == list(WRITES)
    (data,) = [e for e in entries if e.get("map") == "data"]
    assert data == {"map": "data", "key": pid, "value": {"count": CALLS, "bytes": BYTES, "comm": comm}}
    (hist,) = [e for e in entries if e.get("map") == "hists"]
    assert hist["key"] == {"pid": pid, "comm": comm}
    assert {i: n for i, n in enumerate(hist["value"]["slots"]) if n} == {0: 2, 3: 4, 13: 4}
    (fds,) = [e for e in entries if e.get("global") == "fd_writes"]
    assert fds["value"] == [CALLS if i == FD else 0 for i in range(16)]
    (linear,) = [e for e in entries if e.get("global") == "bytes_linear_hist"]
    assert {i: n for i, n in enumerate(linear["value"]) if n} == {1: 2, 11: 3, 15: 1}
    assert not any("time" in e for e in entries)  # the exit round has no time stamp without -i


def test_every_interval():
    child = Child()
    with running("ecli", "run", "-i", "0.3", package(), "--target_pid", str(child.pid)) as ecli:
        child.go()
        seen = ecli.wait_for(lambda line: line == "@sizes[14157]: 4\n")
        assert ecli.proc.poll() is None  # printed while running, not at exit
    stamp = max(i for i, line in enumerate(seen) if re.fullmatch(r"\d\d:\d\d:\d\d\n", line))
    assert seen[stamp + 1:stamp + 5] == [f"@sizes[{size}]: {n}\n" for size, n in WRITES]


def test_bounded_dump_keeps_the_largest():
    from pyeunomia.format.mapshape import DumpWriter, MapDump
    from pyeunomia.runner.mapdump import MapDumper
    from pyeunomia.runner.program import Program
    from pyeunomia.source import open_package

    class Keep(DumpWriter):
        def write_dumps(self, dumps: list[MapDump], stamp: str | None) -> None:
            self.dumps = dumps

    child = Child()
    with Program(open_package(package()), {"target_pid": child.pid}) as prog:
        child.go()
        three, one = Keep(), Keep()
        MapDumper(prog.package, prog.loaded, three, limit=3).dump()
        MapDumper(prog.package, prog.loaded, one, limit=1).dump()
        chosen = MapDumper(prog.package, prog.loaded, Keep())
        everything = MapDumper(prog.package, prog.loaded, Keep(), all_maps=True)
    assert sorted(t.info.name for t in chosen.maps) == ["calls", "data", "hists", "sizes"]
    assert chosen.skipped == [("start", "state kept between events (the program deletes its entries)")]
    assert sorted(t.info.name for t in everything.maps) == ["calls", "data", "hists", "sizes", "start"]
    by_name = {d.name: d for d in three.dumps}
    assert by_name["sizes"].total == 4
    assert by_name["sizes"].entries == [(1, 2), (11, 3), (14157, 4)]  # the 3 largest, by key
    assert by_name["calls"].entries == [(0, CALLS), (1, CALLS)]
    by_name = {d.name: d for d in one.dumps}
    assert (by_name["sizes"].entries, by_name["sizes"].total) == ([(14157, 4)], 4)
    assert (by_name["calls"].entries, by_name["calls"].total) == ([(0, CALLS)], 2)  # per-CPU, ranked from bytes
    assert by_name["hists"].total == 1


def test_a_program_with_nothing_to_print_says_so():
    out = temp_dir()
    built_minimal = run("ecc", str(EXAMPLES / "minimal" / "minimal.bpf.c"),
                        "-o", str(out))
    assert built_minimal.returncode == 0, built_minimal.stderr
    done = run("ecli", "run", "-d", "0.5", str(out / "package.json"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("has nothing to print") == 1


def test_maps_that_stay_empty_are_named_at_exit():
    done = run("ecli", "run", "-d", "0.5", package(), "--target_pid", "1")  # init makes no write() so soon
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "stayed empty" in done.stderr and "nothing to print" not in done.stderr


def test_sampled_map_keys_sort_as_numbers():
    """A map with `sample` metadata keeps its own path (every interval), its
    keys in numeric order now, and is not printed again at exit."""
    doc = json.loads(Path(package()).read_text())
    for m in doc["meta"]["bpf_skel"]["maps"]:
        if m["name"] == "sizes":
            m["sample"] = {"interval": 200, "type": "default_kv"}
    sampled = temp_dir() / "package.json"
    sampled.write_text(json.dumps(doc))
    child = Child()
    with running("ecli", "run", "-j", str(sampled), "--target_pid", str(child.pid)) as ecli:
        child.go()
        seen = ecli.wait_for(lambda line: json.loads(line) == {**json.loads(line), "map": "sizes", "key": 14157,
                                                                 "value": 4})
        ecli.stop()
        rest = [json.loads(line) for line in ecli.rest()]
    # the round that counted the last write: every key, in numeric order
    last_round = [json.loads(line) for line in seen[-4:]]
    assert [(e["key"], e["value"]) for e in last_round] == list(WRITES)
    assert len({e["time"] for e in last_round}) == 1
    assert all("time" in e for e in rest if e.get("map") == "sizes")  # none from the exit dump
