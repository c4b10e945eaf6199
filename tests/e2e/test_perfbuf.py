"""Perf event arrays: every record arrives decoded, and losses are counted.
(Kept as perf arrays: by default they load as ring buffers, test_perf2ring.py.)"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from pyeunomia import Program, open_package

from ..conftest import require
from .helpers import compile_bpf, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

PERF_PROGRAM = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct event { unsigned int pid; unsigned long long seq; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } events SEC(".maps");
const volatile unsigned int target_pid = 0;
unsigned long long seq = 0;
struct event event_btf_anchor;  /* keeps struct event in the object's BTF */
SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) {
    struct event e = {};
    e.pid = bpf_get_current_pid_tgid() >> 32;
    if (e.pid != target_pid) return 0;
    e.seq = __sync_fetch_and_add(&seq, 1);
    bpf_get_current_comm(e.comm, sizeof(e.comm));
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""
PRODUCER = """
import os, sys
os.sched_setaffinity(0, {0})  # one CPU: one ring sees all records and all losses
for line in sys.stdin:
    for _ in range(int(line)):
        os.getppid()
    print("done", flush=True)
"""


@pytest.fixture(scope="module")
def perf_object():
    require(shutil.which("clang") is not None, "clang is not installed (make test installs it)")
    return compile_bpf(PERF_PROGRAM, temp_dir(), "perfprog").read_bytes()


def producer() -> subprocess.Popen[str]:
    """A process that calls getppid() as many times as each line it reads says."""
    return subprocess.Popen([sys.executable, "-c", PRODUCER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def produce(child: subprocess.Popen[str], n: int, wait: bool = False) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(f"{n}\n")
    child.stdin.flush()
    if wait:
        assert child.stdout.readline() == "done\n"


@pytest.mark.parametrize("perf_to_ring", [False, True], ids=["perf array", "made a ring buffer"])
def test_every_record_arrives_while_reading(perf_object, perf_to_ring: bool):
    n = 50000
    child = producer()
    # Rings big enough for the run: this checks reading while the kernel
    # writes (wrap-around, batches), not the reader's speed.
    with Program(open_package(perf_object), {"target_pid": child.pid}, perf_pages=1024,
                 perf_to_ring=perf_to_ring) as prog:
        assert prog.loaded.rings_from_perf == (["events"] if perf_to_ring else [])
        produce(child, n)
        events = []
        for e in prog.events(duration=3.0):
            events.append(e)
            if len(events) == n:
                break
        stats = prog.stats()
    child.communicate("")
    assert stats.lost == 0
    assert len(events) == n
    assert sorted(e["seq"] for e in events) == list(range(n))
    assert {e["pid"] for e in events} == {child.pid}
    assert events[0]["comm"] == "python3" or events[0]["comm"].startswith("python")


def test_overflow_is_counted_not_hidden(perf_object):
    n = 3000
    child = producer()
    # One page per CPU ring holds far fewer than n records of 48 bytes.
    with Program(open_package(perf_object), {"target_pid": child.pid}, perf_pages=1, perf_to_ring=False) as prog:
        produce(child, n, wait=True)
        first = list(prog.events(duration=1.0))  # nothing read while it ran: the ring overflowed
        # The kernel reports a loss in the next record it manages to write.
        produce(child, 1, wait=True)
        second = list(prog.events(duration=1.0))
        stats = prog.stats()
    child.communicate("")
    assert 0 < len(first) < n
    assert len(second) == 1 and second[0]["seq"] == n
    assert stats.lost == n - len(first)
    assert sorted(e["seq"] for e in first) == list(range(len(first)))


SMALL_MEMLOCK = """
import resource, sys
resource.setrlimit(resource.RLIMIT_MEMLOCK, (1 << 20, 1 << 20))
from pyeunomia import Program, open_package
from pyeunomia.runner.perfbuf import PerfBufferReader, ring_pages
with Program(open_package(sys.argv[1]), perf_to_ring=False) as prog:
    pages = [r.page_cnt for r, _ in prog._readers if isinstance(r, PerfBufferReader)]
print(ring_pages(), *pages)
"""


def test_rings_shrink_to_what_the_memlock_limit_allows(perf_object):
    """Without CAP_IPC_LOCK (a user granted CAP_BPF and CAP_PERFMON), perf
    rings beyond RLIMIT_MEMLOCK are refused: the default size halves until
    it fits, down to the package's perf_buffer_pages (64), instead of failing."""
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is missing")
    path = temp_dir() / "perf.bpf.o"
    path.write_bytes(perf_object)
    done = subprocess.run(["setpriv", "--inh-caps", "-ipc_lock", "--bounding-set", "-ipc_lock",
                           sys.executable, "-c", SMALL_MEMLOCK, str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wanted, got = (int(x) for x in done.stdout.split())
    # what fits: 1 MiB of RLIMIT_MEMLOCK plus perf_event_mlock_kb (516 KiB) per CPU, free
    assert wanted >= 1024 and 64 <= got < wanted and got & (got - 1) == 0, (wanted, got)
