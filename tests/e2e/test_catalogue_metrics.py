"""The catalogue's exporter configs (examples/NAME.yaml) against the real
kernel and a real Prometheus: every config passes the exporter's --check;
then one exporter runs all of them at once (14 configs, 19 programs, each
with a filter added where the tool has one, so only the test's own activity
is counted), Prometheus scrapes it every second, and PromQL must see the
exact counts of real activity: block I/O on a loop device (latency, pattern,
sizes), TCP connects to a port of our own, a child's context switches
(runqlat, cpudist), samples of a CPU with three spinners pinned to it
(runqlen), a child's syscalls, SYN retransmits as TCP_INFO counts them, our
SYNs dropped at closed ports, an OOM kill, reclaims equal to what `ecli run
drsnoop` prints beside the exporter, interrupts bracketed by the kernel's
own counters. Finally every query of examples/grafana-catalogue.json must
return series, and every metric of every config must be on it.

The kernel's log2 histograms have no sum (the BPF programs keep none), so
their count is the +Inf bucket. Measured here: the module takes 32-38 s
(2 cores shared with other sessions), 7 s of it the --check runs."""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..exporter.live import Exporter
from .catalogue.test_block import (
    READ_RWBS,
    Child,
    Loop,
    disk_writes,
    proc_interrupts,
    proc_softirqs,
    reads,
    udp_on_loopback,
)
from .catalogue.test_count import GETPPIDS, KILLS, LOOPBACK, SYSCALL_CHILD, memcg, refused
from .catalogue.test_count import Child as CountChild
from .catalogue.test_sched import SLEEPS, SPIN, cgroup
from .catalogue.test_sched import child as sched_child
from .helpers import ROOT, command, running, temp_dir
from .test_exporter_prometheus import Prometheus, prometheus

pytestmark = pytest.mark.usefixtures("kernel")

EXAMPLES = ROOT / "examples"
# every config of the catalogue, and the tools it runs (a tool may run twice: hardirqs and hardirqs -d)
CONFIGS = {"biolatency": ["biolatency"], "biopattern": ["biopattern"], "bitesize": ["bitesize"],
           "hardirqs": ["hardirqs", "hardirqs"], "softirqs": ["softirqs", "softirqs"],
           "tcpconnect": ["tcpconnect"], "runqlat": ["runqlat"], "cpudist": ["cpudist", "cpudist"],
           "runqlen": ["runqlen"],
           "syscount": ["syscount", "syscount"], "tcpretrans": ["tcpretrans"], "tcpdrop": ["tcpdrop"],
           "oomkill": ["oomkill"], "drsnoop": ["drsnoop"]}
EVENT_TOOLS = {"tcpdrop", "oomkill", "drsnoop"}  # no count mode: the exporter counts their events
NET_RX = 3


def programs_of(name: str) -> list[dict[str, Any]]:
    programs: list[dict[str, Any]] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())["programs"]
    return programs


def test_every_config_passes_the_exporters_check():
    """Each config parses, plans against its package, loads, attaches and detaches (--check), and
    aggregates in the kernel only: every metric reads a map, so no event reaches userspace."""
    shipped = {p.stem for p in EXAMPLES.glob("*.yaml") if not p.stem.startswith("opensnoop")}  # opensnoop: its own
    assert shipped == set(CONFIGS)
    checks = {name: subprocess.Popen([*command("eunomia-exporter"), "-c", str(EXAMPLES / f"{name}.yaml"), "--check"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for name in CONFIGS}
    for name, proc in checks.items():
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert out.splitlines()[-1] == f"{EXAMPLES / name}.yaml: OK", out
        assert out.count("loaded and attached") == len(CONFIGS[name]), out
    for name, tools in CONFIGS.items():
        text = (EXAMPLES / f"{name}.yaml").read_text()
        assert text.startswith("# ") and f"eunomia-exporter -c examples/{name}.yaml" in text, name
        programs = programs_of(name)
        assert [p["name"] for p in programs] == tools
        for p in programs:
            for group in p["metrics"].values():
                assert all(("map" in m or "global" in m) != (name in EVENT_TOOLS) for m in group), name


def combined(overrides: dict[str, list[dict[str, Any]]]) -> str:
    """Every config's programs in one exporter; `overrides[name][i]`: options added to its i-th program."""
    programs = []
    for name in CONFIGS:
        for i, program in enumerate(programs_of(name)):
            extra = overrides.get(name, [])
            if i < len(extra):
                program["options"] = {**(program.get("options") or {}), **extra[i]}
            programs.append(program)
    return yaml.safe_dump({"programs": programs})


def connects(host: str, family: int, port: int, n: int) -> None:
    """n TCP connects to a listener of our own on host:port, each accepted and closed."""
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.bind((host, port))
        server.listen(n)
        for _ in range(n):
            with socket.socket(family, socket.SOCK_STREAM) as c:
                c.connect((host, port))
                server.accept()[0].close()


def free_port_both() -> int:
    """A port free on 127.0.0.1 and on ::1."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET6) as s6:
                s6.bind(("::1", port))
            return port
        except OSError:
            continue


def value_of(prom: Prometheus, expr: str, want: float, timeout: float = 20) -> None:
    """Prometheus answers `expr` with one series of exactly `want`."""
    prom.wait_for(expr, lambda r: len(r) == 1 and float(r[0]["value"][1]) == want, timeout)


def misses(prefix: str) -> int:
    """Runs the kernel skipped, over the loaded BPF programs whose names start
    with `prefix`: a tracepoint program is not run on a CPU where another
    tracepoint or kprobe program is running (the interrupt came in the middle
    of one: bpf_prog_active), and each such skip is counted in its
    recursion_misses (6.7+; 0 before)."""
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True, check=True).stdout
    return sum(p.get("recursion_misses", 0) for p in json.loads(out) if p.get("name", "").startswith(prefix))


def bracketed(kernel: Callable[[], int], scraped: Callable[[], float], activity: Callable[[], None],
              prefix: str) -> int:
    """The exporter's number grows by at most what the kernel's own counter
    counted between the outer two reads, and by at least what it counted
    between the inner two (the exporter reads its maps in between) less the
    runs the kernel skipped (misses() of the programs named `prefix`); its
    growth."""
    outer0 = kernel()
    scraped0 = scraped()
    missed0 = misses(prefix)
    inner0 = kernel()
    activity()
    inner1 = kernel()
    missed = misses(prefix) - missed0
    scraped1 = scraped()
    outer1 = kernel()
    grown = int(scraped1 - scraped0)
    assert inner1 - inner0 - missed <= grown <= outer1 - outer0, (inner1 - inner0, missed, grown, outer1 - outer0)
    return grown


def summed(exp: Exporter, sample: str, label: str, values: set[str]) -> Callable[[], float]:
    """A scrape's sum of `sample` over the series whose `label` is one of `values`."""
    def read() -> float:
        return sum(v for labels, v in exp.samples(sample).items() if dict(labels).get(label) in values)
    return read


SCHED = {"eunomia_runq_latency_seconds_bucket": 0, "eunomia_cpu_oncpu_seconds_bucket": 0,
         "eunomia_cpu_offcpu_seconds_bucket": -1}


def sched_round(exp: Exporter, group: Path) -> None:
    """A child moved into `group` (the cgroup the sched programs filter on)
    while blocked switches D times when told to go: runqlat counts D waits,
    cpudist D on-CPU periods and D - 1 off-CPU ones (its first switch-out came
    before it was in the group). As test_sched's once_more: a switch-in that
    rarely never reaches the tool (1 run in 25 there) gets a second child."""
    for _ in range(2):
        with sched_child(group) as sleeper:
            before = {sample: exp.value(sample, le="+Inf") or 0 for sample in SCHED}
            d = sleeper.go()
            grown = {sample: (exp.value(sample, le="+Inf") or 0) - before[sample] for sample in SCHED}
        assert d >= SLEEPS
        if grown == {sample: d + offset for sample, offset in SCHED.items()}:
            return
    raise AssertionError(f"the child switched {d} times; counted {grown}")


def check_interrupts(exp: Exporter) -> None:
    """softirqs' NET_RX count and histogram, and hardirqs' counts, bracketed by /proc."""
    def net_rx() -> int:
        return proc_softirqs()[NET_RX]
    nets = [bracketed(net_rx, summed(exp, "eunomia_softirqs_total", "vector", {"net_rx"}), udp_on_loopback,
                      "softirq_e"),
            bracketed(net_rx, lambda: exp.value("eunomia_softirq_duration_seconds_bucket", vector="net_rx",
                                                le="+Inf") or 0, udp_on_loopback, "softirq_e")]
    assert min(nets) >= 40  # our datagrams, one NET_RX each
    names = set(proc_interrupts())  # the lines with one handler: its name is the label
    hard = bracketed(lambda: sum(v for n, v in proc_interrupts().items() if n in names),
                     summed(exp, "eunomia_hardirqs_total", "irq", names), disk_writes, "irq_handler_e")
    assert hard > 0  # the disk's writes: at least their completion interrupts


def block_plan(a: Loop, b: Loop) -> list[tuple[str, str, int, int]]:
    """4 sequential reads on a (the first counts as random), 3 scattered ones, 2 reads on b."""
    scattered = [(a.path, "r", offset, 4096) for offset in (10 << 20, 5 << 20, 12 << 20)]
    return reads(a, 4096, 4096, 8192, 4096) + scattered + reads(b, 16384, 65536)


def check_block(prom: Prometheus, a: Loop, b: Loop, comm: str) -> None:
    disk_a, disk_b = a.path.rsplit("/", 1)[1], b.path.rsplit("/", 1)[1]
    latency = f'eunomia_bio_latency_seconds_bucket{{disk="{disk_a}",le="+Inf"}}'
    value_of(prom, latency, 7)
    assert [s["metric"]["flags"] for s in prom.query(latency)] == [READ_RWBS]
    assert not prom.query(f'eunomia_bio_latency_seconds_bucket{{disk="{disk_b}"}}')  # disk: a only
    for metric, want in (("requests", 7), ("sequential_requests", 3), ("random_requests", 4),
                         ("bytes", 4096 * 6 + 8192)):
        value_of(prom, f'eunomia_bio_{metric}_total{{disk="{disk_a}"}}', want)
    # slots of KiB, bounds in bytes: 4 KiB (x6) -> le 7168, 8 KiB -> 15360, 16 KiB -> 31744, 64 KiB -> 130048
    for le, want in (("3072.0", 0), ("7168.0", 6), ("15360.0", 7), ("31744.0", 8), ("130048.0", 9), ("+Inf", 9)):
        value_of(prom, f'eunomia_bio_size_bytes_bucket{{comm="{comm}",le="{le}"}}', want)
    assert {s["metric"]["comm"] for s in prom.query("eunomia_bio_size_bytes_bucket")} == {comm}  # comm: ours only


def retransmitted_syns(family: int) -> tuple[int, int]:
    """A loopback connect whose SYN the listener drops (its accept queue is
    full, as test_count's unanswered_syn), kept until the client has
    retransmitted it once: (server port, the client's retransmits, from
    TCP_INFO's tcpi_total_retrans, read just before it is closed)."""
    host = LOOPBACK[family]
    with socket.socket(family) as server:
        server.bind((host, 0))
        server.listen(0)
        port = server.getsockname()[1]
        with socket.create_connection((host, port)), socket.socket(family) as client:
            assert select.select([server], [], [], 10)[0], "the first connection never reached the accept queue"
            client.setblocking(False)
            client.connect_ex((host, port))
            deadline = time.monotonic() + 10
            while True:
                info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
                total_retrans = struct.unpack_from("I", info, 100)[0]  # struct tcp_info's tcpi_total_retrans
                if total_retrans or time.monotonic() > deadline:
                    return port, total_retrans
                time.sleep(0.05)


def oom_child(comm: str) -> CountChild:
    """A child named `comm` that allocates 256 MiB once told to."""
    return CountChild(f"import ctypes, sys\nctypes.CDLL(None).prctl(15, {comm.encode()!r}, 0, 0, 0)\n"
                      "sys.stdin.readline()\nb = b'x' * (256 << 20)\n")


def cold_reader(tmp: Path) -> CountChild:
    """A reader of a cold 48 MiB file (as test_count's drsnoop test): in a 16 MiB
    memory cgroup, its reads reclaim the cgroup's page cache."""
    cold = tmp / "cold"
    with cold.open("wb") as f:
        f.write(os.urandom(1 << 20) * 48)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # not cached: the child's reads charge it
    return CountChild(f"import os, sys\nsys.stdin.readline()\nfd = os.open({str(cold)!r}, os.O_RDONLY)\n"
                      "while os.read(fd, 1 << 20):\n    pass\n")


def check_memory(prom: Prometheus, reader: CountChild) -> None:
    """An OOM kill of a child of a name of its own in a 32 MiB memory cgroup, and the cold
    reader's reclaims in a 16 MiB one: the exporter (drsnoop filtering on the reader's pid)
    counts exactly the reclaims `ecli run drsnoop -p` prints beside it, and their pages."""
    comm = f"pyeuoom{os.getpid() % 100000}"
    with memcg(32 << 20) as cg:
        victim = oom_child(comm)
        (cg / "cgroup.procs").write_text(str(victim.pid))
        assert victim.go() == -9  # SIGKILL
    value_of(prom, f'eunomia_oom_kills_total{{comm="{comm}"}}', 1)
    with memcg(16 << 20) as cg, running("ecli", "run", "-j", "drsnoop", "-p", str(reader.pid)) as tool:
        (cg / "cgroup.procs").write_text(str(reader.pid))
        assert reader.go() == 0
        time.sleep(0.3)  # the ring's wake-up batches events up to 10 ms
        assert tool.stop() == 0, tool.stderr_lines
        events = [json.loads(line) for line in tool.rest()]
    assert events and {e["memcg"] for e in events} == {1}
    value_of(prom, 'eunomia_direct_reclaim_seconds_bucket{kind="memcg",le="+Inf"}', len(events))
    value_of(prom, 'eunomia_direct_reclaim_pages_total{kind="memcg"}', sum(e["nr_reclaimed"] for e in events))
    # the sum is the exporter's program's own timing of the same reclaims (its own begin stamps): > 0
    assert prom.query('eunomia_direct_reclaim_seconds_sum{kind="memcg"} > 0')


def check_network(exp: Exporter, prom: Prometheus) -> None:
    """tcpdrop (filtering on our pid: loopback drops run in the sender's context): SYNs to
    closed ports, per family (counted from a scrape before: the test's own HTTP connections
    may have had a packet dropped by then); then tcpretrans -c: our SYN's retransmits, as
    TCP_INFO counts them."""
    wanted = {"4": 3, "6": 2}
    labels = {ip: {"ip": ip, "state": "0", "location": f"tcp_v{ip}_rcv"} for ip in wanted}
    before = {ip: exp.value("eunomia_tcp_drops_total", **labels[ip]) or 0 for ip in wanted}
    for family, ip in ((socket.AF_INET, "4"), (socket.AF_INET6, "6")):
        for _ in range(wanted[ip]):
            refused(family)
    for ip, n in wanted.items():
        exp.wait_for(lambda ip=ip, n=n: exp.value("eunomia_tcp_drops_total", **labels[ip]) == before[ip] + n, 5,
                     f"{n} more drops of IPv{ip}")
        selector = ",".join(f'{k}="{v}"' for k, v in labels[ip].items())
        value_of(prom, f"eunomia_tcp_drops_total{{{selector}}}", before[ip] + n)
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        port, retrans = retransmitted_syns(family)
        assert retrans >= 1
        value_of(prom, f'eunomia_tcp_retransmits_total{{laddr="{addr}",raddr="{addr}",rport="{port}"}}', retrans)


def check_syscalls(prom: Prometheus, child: CountChild) -> None:
    """syscount -L and -x filtering on a child that calls getppid() and a failing kill()."""
    assert child.go() == 0
    for metric, syscall, want in (("syscalls", "getppid", GETPPIDS), ("syscalls", "kill", KILLS),
                                  ("syscall_failures", "kill", KILLS)):
        value_of(prom, f'eunomia_{metric}_total{{syscall="{syscall}"}}', want)
    assert not prom.query('eunomia_syscall_failures_total{syscall="getppid"}')
    assert prom.query('eunomia_syscall_time_seconds_total{syscall="getppid"} > 0')


def check_runqlen(exp: Exporter) -> None:
    """Three spinners pinned to the last CPU (test_sched's runqlen test): every sample taken
    there meanwhile finds at least 2 tasks waiting, so only buckets from le=2 on grow."""
    last = max(os.sched_getaffinity(0))
    spinners = []
    try:
        for n in range(3):
            p = subprocess.Popen([sys.executable, "-c", SPIN, f"pyeuqlen{n}", "30"], stdout=subprocess.PIPE,
                                 preexec_fn=lambda: os.sched_setaffinity(0, {last}))
            spinners.append(p)
            assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        time.sleep(0.1)
        def buckets() -> dict[str, float]:
            return {le: exp.value("eunomia_runq_length_bucket", cpu=str(last), le=le) or 0
                    for le in ("0.0", "1.0", "+Inf")}
        before = buckets()
        time.sleep(1)
        after = buckets()
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert after["0.0"] == before["0.0"] and after["1.0"] == before["1.0"], (before, after)
    assert after["+Inf"] > before["+Inf"]  # it sampled (49 times a second)
    cpus = {dict(k)["cpu"] for k in exp.samples("eunomia_runq_length_bucket")}
    assert cpus == {str(c) for c in os.sched_getaffinity(0)}


def check_dashboard(prom: Prometheus) -> None:
    """Every query of the dashboard is valid PromQL with data behind it."""
    dashboard = json.loads((EXAMPLES / "grafana-catalogue.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 2 * len(CONFIGS)
    shown = " ".join(exprs)  # every metric of every config is on the dashboard
    assert [m["name"] for name in CONFIGS for p in programs_of(name) for group in p["metrics"].values()
            for m in group if m["name"].removesuffix("_total") not in shown] == []
    time.sleep(2)  # rate() needs two samples in its window
    empty = [e for e in exprs if not prom.query(e)]
    assert empty == [], empty


def test_catalogue_through_prometheus():
    tmp = temp_dir()
    a, b = Loop(), Loop()
    port = free_port_both()
    try:
        with cgroup() as group:
            io = Child(block_plan(a, b), tag="met")
            syscalls, reader = CountChild(SYSCALL_CHILD), cold_reader(tmp)
            config = combined({"biolatency": [{"disk": a.dev}], "biopattern": [{"disk": a.dev}],
                               "bitesize": [{"comm": io.name}], "runqlat": [{"cgroup": str(group)}],
                               "cpudist": [{"cgroup": str(group)}] * 2,
                               "syscount": [{"pid": syscalls.pid}] * 2, "tcpdrop": [{"pid": os.getpid()}],
                               "drsnoop": [{"pid": reader.pid}]})
            with Exporter(tmp, config) as exp, prometheus(tmp, f"127.0.0.1:{exp.port}") as prom:
                prom.wait_for('up{job="eunomia"}', lambda r: r and r[0]["value"][1] == "1")
                io.go()
                connects("127.0.0.1", socket.AF_INET, port, 5)
                connects("::1", socket.AF_INET6, port, 3)
                sched_round(exp, group)
                check_interrupts(exp)
                check_block(prom, a, b, io.name)
                value_of(prom, f'eunomia_tcp_connects_total{{saddr="127.0.0.1",daddr="127.0.0.1",dport="{port}"}}', 5)
                value_of(prom, f'eunomia_tcp_connects_total{{saddr="::1",daddr="::1",dport="{port}"}}', 3)
                for sample in SCHED:  # what the exporter showed directly, Prometheus shows too
                    value_of(prom, f'{sample}{{le="+Inf"}}', exp.value(sample, le="+Inf") or -1)
                assert prom.query('eunomia_softirq_time_seconds_total{vector="net_rx"} > 0')
                assert prom.query("eunomia_hardirq_time_seconds_total > 0")
                check_runqlen(exp)
                check_syscalls(prom, syscalls)
                check_network(exp, prom)
                check_memory(prom, reader)
                check_dashboard(prom)
    finally:
        a.close()
        b.close()
