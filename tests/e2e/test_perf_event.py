"""perf_event programs: eunomia-bpf's profile example, compiled here with
ecc, samples every CPU through one perf event each, and its events (a pid,
a comm, kernel and user stacks as arrays of addresses) decode and print
(symbolized stacks: test_stacks.py).
This machine has no hardware PMU: the software cpu-clock stands in."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pyeunomia.kernel import features

from ..compiler.ecc_programs import compiler  # noqa: F401 - compiler is a fixture
from ..conftest import EUNOMIA_EXAMPLES, assert_nothing_new_loaded, loaded_prog_ids, require
from .helpers import Running, command, run, temp_dir, unique_executable

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

EXAMPLES = EUNOMIA_EXAMPLES
BUSY_LOOP = "i=0; while [ $i -lt 100000000 ]; do i=$((i+1)); done"


@functools.cache
def _profile() -> Path:
    out = temp_dir()
    source = EXAMPLES / "profile"
    done = run("ecc", str(source / "profile.bpf.c"), str(source / "profile.h"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out / "package.json"


def profile_package(interpreter: bool = True) -> Path:
    """The example's package as our ecc builds it: its events map carries
    the `"intepreter": {"stack_trace": {}}` (sic) of the example's
    `/// @intepreter` comment. Without `interpreter`, that key is taken out
    (its events then print field by field, the stacks as arrays)."""
    require((EXAMPLES / "profile" / "profile.bpf.c").exists(), f"eunomia-bpf's examples are not at {EXAMPLES}")
    doc = json.loads(_profile().read_text())
    events = next(m for m in doc["meta"]["bpf_skel"]["maps"] if m["name"] == "events")
    assert events["intepreter"] == {"stack_trace": {}}
    if interpreter:
        return _profile()
    del events["intepreter"]
    path = temp_dir() / "profile.json"
    path.write_text(json.dumps(doc))
    return path


@contextmanager
def busy_child() -> Iterator[subprocess.Popen[bytes]]:
    """A shell under a name no other process has, spinning on one CPU."""
    exe = unique_executable(temp_dir(), "pyprof")
    shutil.copy("/bin/bash", exe)
    proc = subprocess.Popen([str(exe), "-c", BUSY_LOOP])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_profile_samples_a_busy_child():
    before = loaded_prog_ids()
    ecli = Running([*command("ecli"), "run", "-j", str(profile_package(interpreter=False))], "attached")
    try:
        with busy_child() as child:
            comm = Path(child.args[0]).name[:15]
            event = ecli.json_events(lambda e: e["pid"] == child.pid, timeout=20)[0]
    finally:
        assert ecli.stop() == 0, ecli.stderr_lines
    assert event["comm"] == comm
    assert 0 <= event["cpu_id"] < os.cpu_count()
    assert len(event["kstack"]) == len(event["ustack"]) == 128
    assert all(isinstance(a, int) for a in event["kstack"] + event["ustack"])
    assert event["ustack_sz"] > 0 and any(event["ustack"][: event["ustack_sz"] // 8])  # a user stack, as addresses
    sampled = "CPU cycles" if features.has_cpu_cycles_sampling() else "the software cpu-clock"
    notes = [line for line in ecli.stderr_lines if "attached" not in line]
    assert notes == [
        f"ecli: perf_event program 'profile' samples {sampled}"
        f"{' (no hardware cycle counter here)' if 'clock' in sampled else ''} at 49 Hz on {os.cpu_count()} CPUs\n"]
    assert_nothing_new_loaded(before)


def test_frequency_sets_the_samples_per_second():
    """At -F 10 a process that spins on one CPU is sampled at most 10 times a
    second; at the default 49 Hz it would be up to 49 (147 in 3 s, measured)."""
    with busy_child() as child:
        done = run("ecli", "run", "-j", "-F", "10", "-d", "3", str(profile_package()))
        assert done.returncode == 0, done.stderr
        assert child.poll() is None  # it spun all along
    mine = [e for e in map(json.loads, done.stdout.splitlines()) if e["pid"] == child.pid]
    # 3 s, plus the moments between attaching and the timer's start: 30-ish; at 49 Hz it is about 147
    assert 1 <= len(mine) <= 45, len(mine)
    assert "at 10 Hz" in done.stderr


def test_frequency_above_the_kernels_limit_is_one_line():
    limit = int(Path("/proc/sys/kernel/perf_event_max_sample_rate").read_text())
    before = loaded_prog_ids()
    done = run("ecli", "run", "-F", str(limit + 1), str(profile_package()))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"ecli: error: sampling at {limit + 1} Hz is above this kernel's limit "
        f"(kernel.perf_event_max_sample_rate = {limit}): choose at most {limit}"]
    assert_nothing_new_loaded(before)
