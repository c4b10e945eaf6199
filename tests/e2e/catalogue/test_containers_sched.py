"""The scheduler, syscall and block tools filtered by container in the
kernel (`--container NAME`) and naming it (`--containers -j`), with real
containers: one of containerd (through `ctr`) and one of podman, each
running busybox's `sleep` for ever, so nothing else runs in their cgroups.

The activity is the test's own, counted exactly as in test_sched.py,
test_count.py and test_block.py: a child moved into a container's cgroup v2
directory (what `--container` resolves to cgroup ids, and what the BPF
programs see) while it waits, then told to go. Every test makes the same
activity three times, in the chosen container, in the other one and on the
host, and asserts that only the first is reported, with the container's
cgroup id, name and runtime. The block tools see the requests of the first
bio's submitter (block_bio_queue), so their children do O_DIRECT I/O on a
loop device.

Measured here: the module takes 25 s (11 tool runs of 1.5 to 3.3 s; the
two containers start in 0.6 s once the image is cached, and are removed in
0.5 s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.decoders.cgroup import cgroup2_root

from ...conftest import require
from ..containerenv import CTD_NAMESPACE, PODMAN_RUN, Box, Containerd, cgroup_id_of, image, import_into_containerd, sh
from ..helpers import Running, command, temp_dir
from .test_block import READ_RWBS, SECTOR, Loop, counted, maps, reads
from .test_block import Child as IoChild
from .test_count import ARCH_SYSCALLS
from .test_sched import SPIN, Child, hists, once_more

pytestmark = pytest.mark.usefixtures("kernel")
RUN_ID = f"{os.getpid() % 100000}"
GETPPIDS = {"in": 37, "other": 23, "host": 11}  # a different count for each place: a leak shows as a sum
KILLS = 5
SYSCALLS = ARCH_SYSCALLS[os.uname().machine]
SYSCALL_CHILD = """
import os, sys
print(flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[1])):
    os.getppid()
for _ in range(int(sys.argv[2])):
    try:
        os.kill(0x3ffffff0, 0)  # no such process: ESRCH
    except OSError:
        pass
"""


class Idle(Box):
    """A container whose one process sleeps for ever: its cgroup is quiet
    until the test moves a process in."""

    def __init__(self, runtime: str, name: str, image_name: str):
        self.runtime, self.name = runtime, name
        argv = ["/bin/busybox", "sleep", "1000000"]
        if runtime == "containerd":
            sh("ctr", "-n", CTD_NAMESPACE, "run", "-d", "--net-host", image_name, name, *argv)
            self.pid = int(next(line.split()[1] for line in sh("ctr", "-n", CTD_NAMESPACE, "task", "ls").stdout
                                .splitlines() if line.split()[:1] == [name]))
        else:
            sh("podman", "run", "-d", *PODMAN_RUN, "--name", name, image_name, *argv)
            self.pid = int(sh("podman", "inspect", "-f", "{{.State.Pid}}", name).stdout)
        self.cgroup_id = cgroup_id_of(self.pid)
        root = cgroup2_root()
        assert root is not None
        with open(f"/proc/{self.pid}/cgroup") as f:
            self.dir = Path(root + next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::")))
        assert self.dir.stat().st_ino == self.cgroup_id

    def take(self, pid: int) -> None:
        """Move a process of the test into this container's cgroup."""
        (self.dir / "cgroup.procs").write_text(str(pid))
        assert cgroup_id_of(pid) == self.cgroup_id


@pytest.fixture(scope="module")
def boxes() -> Iterator[dict[str, Idle]]:
    for name in ("ctr", "containerd", "podman", "runc"):
        require(shutil.which(name) is not None, f"{name} is not installed (make test installs it)")
    require(os.geteuid() == 0, "containers need root")
    ctd = Containerd(temp_dir())
    made: dict[str, Idle] = {}
    try:
        image_name, archive = image()
        import_into_containerd(archive, image_name)
        made["containerd"] = Idle("containerd", f"sched-ctd-{RUN_ID}", image_name)
        made["podman"] = Idle("podman", f"sched-pod-{RUN_ID}", image_name)
        yield made
    finally:
        for box in made.values():
            box.remove()
        ctd.stop()


def other(boxes: dict[str, Idle], chosen: str) -> Idle:
    return next(b for r, b in boxes.items() if r != chosen)


def filter_ids(pid: int) -> set[int]:
    """The cgroup ids in the cgroup_filter map of the tool running as `pid`
    (its own map: other tools may be running with one of that name)."""
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        map_id = next((line.split()[1] for line in info.splitlines() if line.startswith("map_id:")), None)
        if map_id is None or json.loads(sh("bpftool", "-j", "map", "show", "id", map_id).stdout).get("name") \
                != "cgroup_filter":
            continue
        out = sh("bpftool", "-j", "map", "dump", "id", map_id).stdout
        return {int(e["formatted"]["key"]) if "formatted" in e else
                int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little") for e in json.loads(out or "[]")}
    raise AssertionError(f"process {pid} holds no cgroup_filter map")


def tool(box: Idle, *argv: str, as_json: bool = True) -> Running:
    """`ecli run -j --containers --container BOX ARGV...` (ARGV: the tool's
    name and options), once its filter map holds the container (the runner
    fills it just after attaching)."""
    run = Running([*command("ecli"), "run", *["-j"] * as_json, "--containers", "--container", box.name, *argv],
                  "attached")
    deadline = time.monotonic() + 20  # a loaded machine: ecli's start alone took 3 s
    while filter_ids(run.proc.pid) != {box.cgroup_id}:
        if time.monotonic() > deadline:
            run.stop()
            raise AssertionError(f"{box.name}'s cgroup never reached the filter map")
        time.sleep(0.05)
    return run


def results(run: Running, as_json: bool = True) -> list[Any]:
    assert run.stop() == 0, run.stderr_lines
    assert not any("Traceback" in line for line in run.stderr_lines), run.stderr_lines
    return [json.loads(line) for line in run.rest()] if as_json else run.rest()


def assert_named(events: list[dict[str, Any]], box: Idle) -> None:
    assert {(e["cgroup_id"], e["container"], e["container_runtime"], e["pod"], e["k8s_namespace"])
            for e in events} == {(box.cgroup_id, box.name, box.runtime, "", "")}


@contextmanager
def sleepers(boxes: dict[str, Idle], chosen: str) -> Iterator[tuple[Child, Child, Child]]:
    """test_sched's sleeper three times: in the chosen container, in the other, on the host."""
    with ExitStack() as stack:
        made = []
        for group in (boxes[chosen].dir, other(boxes, chosen).dir, None):
            c = Child(group=group)
            stack.callback(c.kill)
            made.append(c)
        yield made[0], made[1], made[2]


# -- scheduler ------------------------------------------------------------------

@pytest.mark.parametrize(("name", "chosen"), [("runqlat", "containerd"), ("cpudist", "podman")])
@once_more
def test_histogram_counts_only_the_container(boxes: dict[str, Idle], name: str, chosen: str) -> None:
    """-P: the one histogram is the chosen container's sleeper's, with every
    wait (runqlat) or on-CPU period (cpudist) of it: D, from /proc."""
    with sleepers(boxes, chosen) as (inside, elsewhere, host):
        run = tool(boxes[chosen], name, "-P")
        d = inside.go()
        elsewhere.go()
        host.go()
        out = hists(results(run))
    assert list(out) == [inside.pid] and sum(out[inside.pid]) == d


@pytest.mark.parametrize(("name", "args", "fewer", "chosen"), [
    ("runqslower", ("--min-us", "0"), 0, "podman"),  # every switch-in: D
    ("offcputime", ("-m", "0"), 1, "containerd"),  # every switch-out but the last: D - 1
])
@once_more
def test_events_only_of_the_container_and_named(boxes: dict[str, Idle], name: str, args: tuple[str, ...], fewer: int,
                                                chosen: str) -> None:
    box = boxes[chosen]
    with sleepers(boxes, chosen) as (inside, elsewhere, host):
        run = tool(box, name, *args)
        d = inside.go()
        elsewhere.go()
        host.go()
        time.sleep(0.3)  # the ring's wake-up batches events up to 10 ms
        events = results(run)
    assert len(events) == d - fewer
    tid, pid = ("pid", "tgid") if name == "runqslower" else ("tid", "pid")  # offcputime's are stack events
    assert {(e[tid], e[pid]) for e in events} == {(inside.pid, inside.pid)}
    assert_named(events, box)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_profile_samples_only_the_container(boxes: dict[str, Idle], as_json: bool) -> None:
    """Stack events carry the container keys too (-j), and the text names
    the container in each sample's head line."""
    box = boxes["containerd"]
    spinners = []
    try:
        for group in (box.dir, other(boxes, "containerd").dir, None):
            spin = subprocess.Popen([sys.executable, "-c", SPIN, f"pyeuspin{len(spinners)}", "30"],
                                    stdout=subprocess.PIPE)
            spinners.append(spin)
            assert spin.stdout is not None and spin.stdout.readline() == b"ready\n"
            if group is not None:
                (group / "cgroup.procs").write_text(str(spin.pid))
        run = tool(box, "-F", "99", "profile", "-U", as_json=as_json)
        time.sleep(1)
        events = results(run, as_json)
    finally:
        for spin in spinners:
            spin.kill()
            spin.wait()
    # ~1 s at 99 Hz of a spinner sharing 2 busy CPUs with two others: the bound leaves room for the machine's load
    if not as_json:
        heads = [line.rstrip("\n") for line in events if line.startswith("COMM: ")]
        assert len(heads) >= 10
        assert {line.split(" @ CPU ")[0] for line in heads} == {f"COMM: pyeuspin0 (pid={spinners[0].pid})"}
        assert {line.split(" @ CPU ")[1].split(" ", 1)[1] for line in heads} == {f"in containerd container {box.name}"}
        return
    assert len(events) >= 10
    assert {(e["pid"], e["comm"]) for e in events} == {(spinners[0].pid, "pyeuspin0")}
    assert_named(events, box)


# -- syscalls -------------------------------------------------------------------

def test_syscount_counts_only_the_container(boxes: dict[str, Idle]) -> None:
    box = boxes["podman"]
    children = []
    try:
        for group, n in ((box, GETPPIDS["in"]), (other(boxes, "podman"), GETPPIDS["other"])):
            c = subprocess.Popen([sys.executable, "-c", SYSCALL_CHILD, str(n), str(KILLS)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE)
            children.append(c)
            assert c.stdout is not None
            c.stdout.readline()  # started: waits on stdin
            group.take(c.pid)
        run = tool(box, "syscount")
        for c in children:
            assert c.stdin is not None
            c.stdin.write(b"go\n")
            c.stdin.close()
            assert c.wait(60) == 0
        for _ in range(GETPPIDS["host"]):
            os.getppid()
        lines = results(run)
    finally:
        for c in children:
            c.kill()
            c.wait()
    calls = {e["key"]: e["value"]["count"] for e in lines if e.get("map") == "syscalls" and "key" in e}
    assert (calls[SYSCALLS["getppid"]], calls[SYSCALLS["kill"]]) == (GETPPIDS["in"], KILLS)


# -- block I/O ------------------------------------------------------------------

@pytest.fixture
def loop() -> Iterator[Loop]:
    disk = Loop()
    try:
        yield disk
    finally:
        disk.close()


def io_in(boxes: dict[str, Idle], chosen: str, plans: list[list[tuple[str, str, int, int]]]) -> list[IoChild]:
    """test_block's I/O children: the first in the chosen container, the
    second in the other, the third on the host."""
    children = [IoChild(plan, tag=tag) for plan, tag in zip(plans, ("in", "oth", "host"), strict=True)]
    boxes[chosen].take(children[0].pid)
    other(boxes, chosen).take(children[1].pid)
    return children


def traced(box: Idle, name: str, *args: str, children: list[IoChild]) -> list[dict[str, Any]]:
    run = tool(box, name, *args)
    try:
        for child in children:
            child.go()
    finally:
        lines = results(run)
    return lines


def test_biosnoop_reports_only_the_container(boxes: dict[str, Idle], loop: Loop) -> None:
    box = boxes["podman"]
    children = io_in(boxes, "podman", [reads(loop, 4096, 16384), reads(loop, 8192), reads(loop, 4096)])
    events = [e for e in traced(box, "biosnoop", "-d", loop.name, children=children) if "map" not in e]
    assert [(e["pid"], e["comm"], e["rwbs"], e["sector"], e["len"]) for e in events] == [
        (children[0].pid, children[0].name, READ_RWBS, 0, 4096),
        (children[0].pid, children[0].name, READ_RWBS, 4096 // SECTOR, 16384)]
    assert_named(events, box)


def test_biolatency_counts_only_the_container(boxes: dict[str, Idle], loop: Loop) -> None:
    box = boxes["containerd"]
    children = io_in(boxes, "containerd", [reads(loop, 4096, 4096, 8192), reads(loop, 4096), reads(loop, 4096, 4096)])
    lines = traced(box, "biolatency", "-D", children=children)
    assert [(h["key"]["dev"], sum(h["value"]["slots"])) for h in maps(lines, "hists")] == [(loop.dev, 3)]


def test_biopattern_counts_only_the_container(boxes: dict[str, Idle], loop: Loop) -> None:
    """The other container and the host read first, each ending where the
    container's first read starts: counted, they would make it sequential."""
    box = boxes["podman"]
    start = 1 << 20
    before = [(loop.path, "r", start - 8192, 8192)]
    children = io_in(boxes, "podman", [reads(loop, 4096, 4096, 8192, start=start), before, before])
    lines = traced(box, "biopattern", "-d", loop.name, children=[children[1], children[2], children[0]])
    [counter] = maps(lines, "counters")
    assert counter["key"] == loop.dev
    value = counter["value"]
    assert (value["random"], value["sequential"], value["count"], value["bytes"]) == (1, 2, 3, 16384)
    assert value["last_sector"] == (start + 16384) // SECTOR


def test_bitesize_counts_only_the_container(boxes: dict[str, Idle], loop: Loop) -> None:
    box = boxes["containerd"]
    children = io_in(boxes, "containerd", [reads(loop, 4096, 16384, 65536, 1024), reads(loop, 4096),
                                           reads(loop, 16384)])
    lines = traced(box, "bitesize", children=children)
    [hist] = maps(lines, "hists")
    assert hist["key"] == {"comm": children[0].name}
    assert counted(hist["value"]["slots"]) == {0: 1, 2: 1, 4: 1, 6: 1}  # KiB: 1 -> 0, 4 -> 2, 16 -> 4, 64 -> 6
