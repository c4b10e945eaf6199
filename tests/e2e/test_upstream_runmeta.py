"""Upstream's run settings in a package's meta, honoured by ecli with real
programs: print_header, debug_verbose (and the program's own --verbose and
-V/--version, which upstream's loader adds), perf_buffer_pages (the size of
every CPU's perf ring, read from ecli's own memory map) and a sampled map's
clear_map (each interval's counts exactly the opens made in it)."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import Running, command, run, running, temp_dir

pytestmark = pytest.mark.usefixtures("kernel", "compiler")


def variant(name: str, change: dict[str, Any], maps: dict[str, Any] | None = None,
            doc: dict[str, Any] | None = None) -> str:
    """The ecc-built test program NAME with these meta keys (and map or doc keys) set."""
    package = json.loads((built(name) / "package.json").read_text())
    package["meta"].update(change)
    for m in package["meta"]["bpf_skel"]["maps"]:
        m.update((maps or {}).get(m["name"], {}))
    if doc is not None:
        package["meta"]["bpf_skel"]["doc"] = doc
    path = temp_dir() / f"{name}.json"
    path.write_text(json.dumps(package))
    return str(path)


def open_missing(path: str, times: int = 1) -> None:
    for _ in range(times):
        try:
            os.close(os.open(path, os.O_RDONLY))
        except FileNotFoundError:
            pass


@pytest.mark.parametrize("print_header", [False, True])
def test_print_header(print_header: bool):
    path = f"/tmp/pyeu-no-such-{uuid.uuid4().hex[:12]}"
    package = variant("opensnoop", {"print_header": print_header})
    with running("ecli", "run", package, "--targ_tgid", str(os.getpid())) as ecli:
        open_missing(path)
        lines = ecli.wait_for(lambda line: line.rstrip().endswith(path))
    header = ["time", "ts", "pid", "uid", "ret", "flags", "comm", "fname"]
    assert (lines[0].split() == header) is print_header
    assert lines[-1].split()[2] == str(os.getpid())
    assert len(lines) == 1 + print_header  # the header (if asked for) and the one open


@pytest.mark.parametrize(("how", "shown"), [("debug_verbose", True), ("--verbose", True), ("neither", False)])
def test_libbpf_log_from_debug_verbose_or_the_programs_verbose(how: str, shown: bool):
    package = variant("opensnoop", {"debug_verbose": how == "debug_verbose"})
    done = run("ecli", "run", "-d", "0.3", package, *(["--verbose"] if how == "--verbose" else []))
    assert done.returncode == 0, done.stderr
    assert ("libbpf: loading object 'opensnoop_bpf' from buffer\n" in done.stderr) is shown, done.stderr


def test_the_programs_version_option():
    """Upstream's loader answers -V with the object name and the doc's
    version, "0.1.0" when the package has none."""
    done = run("ecli", "run", variant("opensnoop", {}), "-V")
    assert (done.returncode, done.stdout) == (0, "opensnoop_bpf 0.1.0\n")
    done = run("ecli", "run", variant("opensnoop", {}, doc={"version": "2.5.1"}), "--version")
    assert (done.returncode, done.stdout) == (0, "opensnoop_bpf 2.5.1\n")


def perf_rings(pid: int) -> list[int]:
    """Sizes of the perf event mappings in a process."""
    sizes = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        if line.endswith("anon_inode:[perf_event]"):
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            sizes.append(end - start)
    return sizes


def online_cpus() -> int:
    count = 0
    for part in Path("/sys/devices/system/cpu/online").read_text().strip().split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


@pytest.mark.parametrize("pages", [8, None, 4096])
def test_perf_buffer_pages_sizes_each_cpus_ring(pages: int | None):
    """A ring per online CPU of at least `perf_buffer_pages` data pages (and
    its control page): upstream's libbpf-rs opens 64 whatever the package
    says; ours share a 16 MiB budget over the CPUs (8 MiB at most per CPU,
    runner/perfbuf.py) and take the package's number where it asks for more."""
    package = variant("opensnoop", {} if pages is None else {"perf_buffer_pages": pages})
    ecli = Running([*command("ecli"), "run", "--perf-array", package], "attached")
    try:
        sizes = perf_rings(ecli.proc.pid)
    finally:
        assert ecli.stop() == 0, ecli.stderr_lines
    page, cpus = os.sysconf("SC_PAGE_SIZE"), online_cpus()
    budget = min(8 << 20, (16 << 20) // cpus) // page
    budget = 1 << (budget.bit_length() - 1)
    assert sizes == [(1 + max(budget, pages or 64)) * page] * cpus


@pytest.mark.parametrize("clear_map", [True, False])
def test_clear_map_empties_the_map_after_each_sample(clear_map: bool):
    """With clear_map each sample counts the opens since the one before, so
    the samples add up to the opens made; without it every sample repeats
    the counts so far (upstream's default)."""
    package = variant("hist", {}, maps={"hists": {"sample": {"interval": 300, "type": "log2_hist",
                                                             "clear_map": clear_map}}})
    missing = f"/tmp/pyeu-no-such-{uuid.uuid4().hex[:12]}"
    samples: list[int] = []

    def counted(line: str) -> bool:
        entry = json.loads(line)
        if entry.get("map") == "hists":
            samples.append(sum(entry["value"]["slots"]))
        return (sum(samples) if clear_map else max(samples, default=0)) >= wanted

    with running("ecli", "run", "--json", package, "--target_pid", str(os.getpid()), "--value", "100") as ecli:
        wanted = 5
        open_missing(missing, 5)
        ecli.wait_for(counted)
        wanted = 8
        open_missing(missing, 3)
        ecli.wait_for(counted)
        time.sleep(0.7)  # two intervals more: nothing new to count in them
    for line in ecli.rest():
        counted(line)
    if clear_map:
        assert sum(samples) == 8 and max(samples) <= 5  # an empty map prints no sample
    else:
        assert samples[-1] == 8 and sum(samples) > 8
