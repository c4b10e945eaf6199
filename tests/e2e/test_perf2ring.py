"""The tutorial's perf-array opensnoop loaded as a ring buffer
(runner/perf2ring.py): the same events as through its perf array, and the
perf array again when the kernel refuses the rewritten program."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from pyeunomia import Program, open_package
from pyeunomia.format.objspec import MAP_PERF_EVENT_ARRAY, MAP_RINGBUF
from pyeunomia.kernel import features
from pyeunomia.runner import perf2ring

from ..compiler.ecc_programs import compiler  # noqa: F401 - a fixture
from ..conftest import EUNOMIA_EXAMPLES, require, skip_unsupported
from .helpers import ROOT, run, running, temp_dir
from .test_upstream_runmeta import perf_rings

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC
COUNTER = "eunomia_file_open_counter_total"


@pytest.fixture(scope="module")
def tutorial() -> str:
    source = EUNOMIA_EXAMPLES / "opensnoop"
    require((source / "opensnoop.bpf.c").exists(), f"eunomia-bpf's examples are not at {EUNOMIA_EXAMPLES}")
    skip_unsupported("ring buffers", features.has_ringbuf())
    out = temp_dir()
    done = run("ecc", str(source / "opensnoop.bpf.c"), str(source / "opensnoop.h"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return str(out / "package.json")


def files(tmp: Path) -> list[str]:
    """Two files that exist and, between them, one that does not."""
    present = [tmp / f"present-{i}" for i in range(2)]
    for p in present:
        p.write_text("x")
    return [str(present[0]), str(tmp / f"missing-{uuid.uuid4().hex[:8]}"), str(present[1])]


def opens(paths: list[str]) -> list[tuple[str, int]]:
    """Open each: (path, what open returned or -errno)."""
    done = []
    for path in paths:
        try:
            fd = os.open(path, OPEN_FLAGS)
            done.append((path, fd))
            os.close(fd)
        except FileNotFoundError:
            done.append((path, -2))
    return done


def traced(package: str, tmp: Path, *extra: str) -> tuple[list[dict[str, Any]], list[str], list[int]]:
    """(the events of our opens, ecli's stderr, its perf ring mappings)."""
    paths = files(tmp)
    with running("ecli", "run", "-v", "--json", *extra, package, "--tgid_target", str(os.getpid())) as ecli:
        rings = perf_rings(ecli.proc.pid)
        made = opens(paths)
        events = ecli.json_events(lambda e: e["fname"].startswith(str(tmp)), count=len(made))
        assert ecli.stop() == 0
    expect = [{"ts": 0, "pid": os.getpid(), "uid": os.getuid(), "ret": ret, "flags": OPEN_FLAGS,
               "comm": Path("/proc/self/comm").read_text().strip(), "fname": path} for path, ret in made]
    assert events == expect
    return events, ecli.stderr_lines, rings


def test_the_tutorial_prints_the_same_events_through_the_ring(tutorial: str):
    ring_dir, perf_dir = temp_dir(), temp_dir()
    ring_events, ring_err, ring_maps = traced(tutorial, ring_dir)
    perf_events, perf_err, perf_maps = traced(tutorial, perf_dir, "--perf-array")

    def same(e: dict[str, Any]) -> dict[str, Any]:  # the paths differ by directory and name, the fds may differ
        return {**e, "fname": Path(e["fname"]).name.split("-")[0], "ret": min(e["ret"], 0)}

    assert [same(e) for e in ring_events] == [same(e) for e in perf_events]
    said = "ecli: perf array 'events' loaded as a ring buffer (2 bpf_perf_event_output calls made bpf_ringbuf_output)\n"
    assert said in ring_err and said not in perf_err
    assert ring_maps == [] and len(perf_maps) == os.cpu_count()


def test_the_perf_array_stays_when_the_kernel_refuses_the_rewrite(tutorial: str, monkeypatch: pytest.MonkeyPatch):
    """A rewrite the verifier refuses (here: the calls left as
    bpf_perf_event_output on a map made a ring buffer) costs nothing but the
    retry: the program loads as written."""
    def broken(data: bytes) -> perf2ring.Rewrite:
        return perf2ring.Rewrite(data, ["events"], 2)

    monkeypatch.setattr(perf2ring, "rewrite", broken)
    tmp = temp_dir()
    paths = files(tmp)
    with Program(open_package(tutorial), {"tgid_target": os.getpid()}) as prog:
        assert [m.type for m in prog.loaded.maps() if m.name == "events"] == [MAP_PERF_EVENT_ARRAY]
        assert prog.loaded.rings_from_perf == []
        made = opens(paths)
        events = []
        for e in prog.events(duration=5.0):
            if e["fname"].startswith(str(tmp)):
                events.append((e["fname"], e["ret"]))
            if len(events) == len(made):
                break
        notes = prog.loaded.ring_notes
    assert events == made
    assert notes[0].startswith("perf array 'events' loaded as a ring buffer")
    assert notes[1].startswith("perf arrays kept: the kernel refused the ring buffer rewrite")


def ring_bytes(pages: int) -> int:
    """What `pages` per CPU ring hold together, rounded up to a power of two."""
    return 1 << (pages * os.sysconf("SC_PAGE_SIZE") * (os.cpu_count() or 1) - 1).bit_length()


def test_the_ring_is_what_the_perf_rings_held_together(tutorial: str):
    with Program(open_package(tutorial), {"tgid_target": os.getpid()}, perf_pages=256) as prog:
        (events,) = [m for m in prog.loaded.maps() if m.name == "events"]
    assert (events.type, events.max_entries) == (MAP_RINGBUF, ring_bytes(256))


def test_the_exporter_counts_the_tutorials_events_through_the_ring(tutorial: str):
    """The exporter checks record sizes against the ring's (no perf padding):
    a perf array made a ring buffer feeds its counters, every open counted."""
    from ..exporter.live import Exporter, Opener

    tmp = temp_dir()
    target = tmp / "opened-5-times.txt"
    target.write_text("x")
    config = (ROOT / "examples" / "opensnoop.yaml").read_text().replace(
        "compiled_ebpf_filename:\n", f"compiled_ebpf_filename: {tutorial}\n")
    child = Opener(tmp)
    with Exporter(tmp, config) as exp:
        assert perf_rings(exp.pid) == []  # no perf ring mapped: the ring buffer carries the events
        labels = {"pid": str(child.pid), "comm": child.name, "filename": str(target)}
        child.do("open", target, 5)
        exp.wait_for(lambda: exp.value(COUNTER, **labels) == 5, what="5 opens")
        assert exp.value("eunomia_exporter_events_lost_total", id="0", program="opensnoop") == 0
        assert exp.stop() == 0
    child.close()
    assert not any("left out of the metrics" in line for line in exp.running.stderr_lines)


def test_a_ring_found_full_is_said_not_hidden(tutorial: str):
    """Ring buffers count no drops: a perf array made a ring buffer that the
    reader finds full says records may have been dropped. 8 KiB hold 26 of
    the tutorial's 304-byte records; 60 opens made before reading overflow it."""
    tmp = temp_dir()
    paths = files(tmp)
    with Program(open_package(tutorial), {"tgid_target": os.getpid()}, perf_pages=1) as prog:
        (events,) = [m for m in prog.loaded.maps() if m.name == "events"]
        assert (events.type, events.max_entries) == (MAP_RINGBUF, ring_bytes(1))
        for _ in range(20):
            opens(paths)
        first = [e for e in prog.events(duration=1.0) if e["fname"].startswith(str(tmp))]
        full = prog.rings_found_full()
        opens(paths[:1])
        second = [e for e in prog.events(duration=1.0) if e["fname"].startswith(str(tmp))]
        after = prog.rings_found_full()
    assert 0 < len(first) < 60
    assert [e["fname"] for e in first] == (paths * 20)[: len(first)]
    assert full == {"events": 1} and after == full  # not full any more once read
    assert [e["fname"] for e in second] == paths[:1]


def test_a_ring_read_in_time_is_never_said_full(tutorial: str):
    tmp = temp_dir()
    paths = files(tmp)
    with Program(open_package(tutorial), {"tgid_target": os.getpid()}) as prog:
        got = 0
        for _ in range(20):
            opens(paths)
            got += sum(1 for e in prog.events(duration=0.2) if e["fname"].startswith(str(tmp)))
        assert prog.rings_found_full() == {}
    assert got == 60
