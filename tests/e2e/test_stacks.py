"""Stack traces for real: eunomia-bpf's profile example and a libbpf-tools
style program of ours (stack ids in a stack trace map), compiled by our ecc
and run by `ecli run`, sample a C program of known function names that
spins in user space and reads /dev/zero in the kernel. Its stacks print
symbolized (its pid, its functions, the kernel's read path), and the
folded stacks and the flame graph count exactly the samples printed."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ..compiler.ecc_programs import compiler  # noqa: F401 - compiler is a fixture
from ..conftest import ROOT, assert_nothing_new_loaded, loaded_prog_ids, require
from .helpers import run, temp_dir, unique_executable
from .test_perf_event import profile_package

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

PROGRAMS = ROOT / "kernel_matrix" / "programs"  # the same programs run in every kernel of the matrix
# the kernel's read path, on every kernel of the matrix (5.10 to 6.18)
KERNEL_READ = "vfs_read"


@functools.cache
def busy_program() -> Path:
    require(shutil.which("gcc") is not None, "gcc is not installed: apt-get install gcc")
    tmp = temp_dir()
    exe = unique_executable(tmp, "pyeustk")
    # -O0 and frame pointers: every function keeps its frame, so the user stack walks through each
    subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(exe), str(PROGRAMS / "stacks-target.c")],
                   check=True)
    return exe


@contextmanager
def busy() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([str(busy_program())])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@functools.cache
def stackid_package() -> Path:
    out = temp_dir()
    done = run("ecc", str(PROGRAMS / "stackid.bpf.c"), str(PROGRAMS / "stackid.h"),
               "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out / "package.json"


Block = tuple[str, int, list[str], list[str]]  # comm, pid, kernel frames, user frames


def blocks(text: str) -> list[Block]:
    """Upstream's text, parsed: one block per sample."""
    out: list[Block] = []
    for chunk in text.split("\n\n"):
        lines = chunk.strip("\n").split("\n")
        if not lines or not lines[0].startswith("COMM: "):
            assert not chunk.strip(), chunk
            continue
        head = re.fullmatch(r"COMM: (.*) \(pid=(\d+)\) @ CPU (\d+)", lines[0])
        assert head, lines[0]
        frames: dict[str, list[str]] = {"Kernel": [], "Userspace": []}
        part = None
        for line in lines[1:]:
            if line in ("Kernel:", "Userspace:"):
                part = line[:-1]
            elif line in ("No Kernel Stack", "No Userspace Stack"):
                part = None
            else:
                m = re.fullmatch(r"  (\d+) \[<([0-9a-f]{16})>\](?: (\S+)\+0x[0-9a-f]+)?(?: \((.*)\))?", line)
                assert m and part, line
                frames[part].append(m.group(3) or "")
        out.append((head.group(1), int(head.group(2)), frames["Kernel"], frames["Userspace"]))
    return out


def assert_busy_stacks(samples: list[Block], pid: int, comm: str) -> None:
    mine = [s for s in samples if s[1] == pid]
    assert mine, f"no sample of pid {pid} among {len(samples)}"
    assert all(s[0] == comm for s in mine)
    spinning = [s for s in mine if s[3][:1] == ["kmx_user_spin"]]
    assert spinning, [s[3][:4] for s in mine]
    assert spinning[0][3][1:3] == ["kmx_round", "main"]  # the callers, innermost first
    reading = [s for s in mine if KERNEL_READ in s[2]]
    assert reading, [s[2][:6] for s in mine]
    assert any(s[3][:3] == ["kmx_kernel_reads", "kmx_round", "main"] for s in reading), [s[3][:4] for s in reading]


def test_profile_prints_symbolized_stacks_and_draws_them():
    before = loaded_prog_ids()
    tmp = temp_dir()
    folded, svg = tmp / "out.folded", tmp / "out.svg"
    with busy() as child:
        done = run("ecli", "run", "-d", "4", "--folded", str(folded), "--flamegraph", str(svg),
                   str(profile_package()))
        assert child.poll() is None
    assert done.returncode == 0, done.stderr
    comm = busy_program().name[:15]
    samples = blocks(done.stdout)
    assert_busy_stacks(samples, child.pid, comm)
    # the folded counts are the samples printed, stack for stack
    lines = folded.read_text().splitlines()
    counts = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in lines}
    assert sum(counts.values()) == len(samples)
    printed: dict[str, int] = {}
    for c, _pid, kernel, user in samples:
        key = ";".join([c, *reversed(user), *(f + "_[k]" for f in reversed(kernel))])
        key = key.replace(";;", ";[unknown];")
        printed[key] = printed.get(key, 0) + 1
    mine = {k: n for k, n in counts.items() if k.startswith(comm + ";")}
    assert {k: n for k, n in printed.items() if k.startswith(comm + ";")} == mine
    assert any(k.endswith(";main;kmx_round;kmx_user_spin") for k in mine)
    assert any(";main;kmx_round;kmx_kernel_reads;" in k and f";{KERNEL_READ}_[k]" in k for k in mine)
    # the flame graph: a frame per distinct path, each as many samples as the folded lines under it
    ns = {"s": "http://www.w3.org/2000/svg"}
    titles = [g.find("s:title", ns).text or "" for g in ET.parse(svg).getroot().iterfind("s:g", ns)]
    assert f"all ({len(samples)} samples, 100.00%)" in titles
    drawn = sum(int(re.search(r"\((\d+) sample", t).group(1)) for t in titles if t.startswith("kmx_user_spin ("))
    assert drawn == sum(n for k, n in mine.items() if "kmx_user_spin" in k.split(";"))
    assert f"ecli: flame graph of {len(samples)} samples written to {svg}" in done.stderr
    assert_nothing_new_loaded(before)


def test_profile_json_and_folded_on_stdout():
    with busy() as child:
        as_json = run("ecli", "run", "-j", "-d", "3", str(profile_package()))
        only_folded = run("ecli", "run", "-d", "3", "--folded", "-", str(profile_package()))
    assert as_json.returncode == 0 and only_folded.returncode == 0, as_json.stderr + only_folded.stderr
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    mine = [e for e in events if e["pid"] == child.pid]
    assert mine and all(e["comm"] == busy_program().name[:15] for e in mine)
    user = [[f["symbol"] for f in e["ustack"]] for e in mine]
    assert any(u[:3] == ["kmx_user_spin", "kmx_round", "main"] for u in user), user[:3]
    frame = next(e["ustack"][0] for e in mine if e["ustack"] and e["ustack"][0]["symbol"] == "kmx_user_spin")
    assert frame["module"] == str(busy_program()) and frame["address"] > 0
    assert any(f["symbol"] == KERNEL_READ for e in mine for f in e["kstack"])
    # folded only: no sample text at all, every line `stack count`
    assert only_folded.stdout and "COMM:" not in only_folded.stdout
    assert all(re.fullmatch(r"\S+ \d+", line) for line in only_folded.stdout.splitlines())
    assert any(line.startswith(busy_program().name[:15] + ";") for line in only_folded.stdout.splitlines())


def test_stack_ids_through_the_stack_trace_map():
    """libbpf-tools style: ids from bpf_get_stackid() in the events, the
    addresses in a BPF_MAP_TYPE_STACK_TRACE map, member names remapped by
    the `/// @intepreter` field_map."""
    before = loaded_prog_ids()
    with busy() as child:
        done = run("ecli", "run", "-d", "3", str(stackid_package()), "--target_tgid", str(child.pid))
    assert done.returncode == 0, done.stderr
    samples = blocks(done.stdout)
    assert samples and {s[1] for s in samples} == {child.pid}  # the program's own filter, by tgid
    assert_busy_stacks(samples, child.pid, busy_program().name[:15])
    assert_nothing_new_loaded(before)


def test_folded_needs_a_stack_trace_package():
    before = loaded_prog_ids()
    package = profile_package(interpreter=False)
    done = run("ecli", "run", "-d", "1", "--folded", str(temp_dir() / "x"), str(package))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"ecli: error: {package} has no map with the stack_trace interpreter: --folded "
        "and --flamegraph need one (\"intepreter\": {\"stack_trace\": {}} on its event buffer)"]
    assert_nothing_new_loaded(before)


def test_an_unwritable_flame_graph_is_one_line_before_loading():
    before = loaded_prog_ids()
    target = temp_dir() / "missing" / "out.svg"
    done = run("ecli", "run", "-d", "1", "--flamegraph", str(target), str(profile_package()))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"ecli: error: cannot write {target}: No such file or directory: choose a writable path"]
    assert_nothing_new_loaded(before)
    assert not os.path.exists(target)


def test_one_file_for_both_outputs_is_refused():
    target = temp_dir() / "out"
    done = run("ecli", "run", "-d", "1", "--folded", str(target), "--flamegraph", str(target), str(profile_package()))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"ecli: error: --folded and --flamegraph both name {target}: give each its own file"]
    assert not target.exists()
