"""The catalogue's exporter configs (examples/NAME.yaml, as shipped) on every
kernel of the matrix: eunomia-exporter runs one config, the catalogue rows'
own triggers cause the activity, and the scrapes must show the metric with
the labels that activity gives (the disk, the I/O child's name, the
syscall, the softirq vector, the loopback addresses and ports, the kernel
function that dropped a SYN, the OOM victim). Exact counts are checked here
by tests/e2e/test_catalogue_metrics.py; here: every config loads, attaches,
aggregates in the kernel and decodes its labels on 5.10, 6.1 and 6.12.

Standard library only: the guest imports this too.
"""

from __future__ import annotations

from . import actions as a
from .actions import Action
from .checks import Ctx, Metric, metric
from .matrix import Build, Program, copy, row
from .tools_block import DATAGRAMS, block_io, serial_irq, udp_datagrams
from .tools_count import getppid_and_kill, memcg_hog, syn_to_closed_port, unanswered_syn
from .tools_net import net_session

EXPORTER = "eunomia-exporter -c {pkg} --listen 127.0.0.1:{port}"
OTHER_PORT = 5000


def on_other_port(trigger: Action) -> Action:
    """`trigger` on the row's port + OTHER_PORT: the exporter serves on the row's port (where the
    harness scrapes it), and net_session and udp_datagrams listen on ctx["port"] too."""
    def moved(ctx: Ctx) -> None:
        ctx["port"] += OTHER_PORT
        trigger(ctx)
    moved.__name__ = trigger.__name__
    return moved


def config(name: str) -> Build:
    return copy(f"repo:examples/{name}.yaml")


def at_least(name: str, minimum: float, **labels: str) -> Metric:
    return Metric(name, labels, minimum)


ROWS: tuple[Program, ...] = (
    row("metrics/biolatency", config("biolatency"), EXPORTER, block_io,
        [metric("eunomia_bio_latency_seconds_bucket", flags="WS", le="+Inf"),
         at_least("eunomia_bio_latency_seconds_bucket", 6, flags="{read_rwbs}", le="+Inf")],
        ready="listening on", modules="loop"),
    row("metrics/biopattern", config("biopattern"), EXPORTER, block_io,
        [at_least("eunomia_bio_sequential_requests_total", 3), at_least("eunomia_bio_random_requests_total", 4)],
        ready="listening on", modules="loop"),
    row("metrics/bitesize", config("bitesize"), EXPORTER, block_io,
        [at_least("eunomia_bio_size_bytes_bucket", 7, comm="{comm}", le="+Inf")], ready="listening on",
        modules="loop"),
    row("metrics/hardirqs", config("hardirqs"), EXPORTER, serial_irq,
        [metric("eunomia_hardirqs_total", irq="{irq}"), metric("eunomia_hardirq_duration_seconds_bucket",
                                                                irq="{irq}", le="+Inf")], ready="listening on"),
    row("metrics/softirqs", config("softirqs"), EXPORTER, on_other_port(udp_datagrams),
        [at_least("eunomia_softirqs_total", DATAGRAMS, vector="net_rx"),
         at_least("eunomia_softirq_duration_seconds_bucket", DATAGRAMS, vector="net_rx", le="+Inf")],
        ready="listening on"),
    row("metrics/runqlat", config("runqlat"), EXPORTER, a.sleepy_child,
        [metric("eunomia_runq_latency_seconds_bucket", le="+Inf")], ready="listening on"),
    row("metrics/cpudist", config("cpudist"), EXPORTER, a.sleepy_child,
        [metric("eunomia_cpu_oncpu_seconds_bucket", le="+Inf"), metric("eunomia_cpu_offcpu_seconds_bucket",
                                                                         le="+Inf")], ready="listening on"),
    row("metrics/runqlen", config("runqlen"), EXPORTER, a.busy_child,
        [metric("eunomia_runq_length_bucket", cpu="0", le="+Inf")], ready="listening on"),
    row("metrics/syscount", config("syscount"), EXPORTER, getppid_and_kill,
        [metric("eunomia_syscalls_total", syscall="getppid"), metric("eunomia_syscall_failures_total",
                                                                     syscall="kill")], ready="listening on"),
    row("metrics/tcpconnect", config("tcpconnect"), EXPORTER, on_other_port(net_session),
        [metric("eunomia_tcp_connects_total", saddr="127.0.0.1", daddr="127.0.0.1", dport="{port}")],
        ready="listening on"),
    row("metrics/tcpretrans", config("tcpretrans"), EXPORTER, unanswered_syn,
        [metric("eunomia_tcp_retransmits_total", laddr="127.0.0.1", raddr="127.0.0.1", rport="{dport}")],
        ready="listening on"),
    row("metrics/tcpdrop", config("tcpdrop"), EXPORTER, syn_to_closed_port,
        [metric("eunomia_tcp_drops_total", ip="4", location="tcp_v4_rcv")], ready="listening on"),
    row("metrics/oomkill", config("oomkill"), EXPORTER, memcg_hog,
        [metric("eunomia_oom_kills_total")], ready="listening on"),
    # the hog's memory is anonymous and the guests have no swap: its reclaims may free no page
    row("metrics/drsnoop", config("drsnoop"), EXPORTER, memcg_hog,
        [metric("eunomia_direct_reclaim_seconds_bucket", kind="memcg", le="+Inf"),
         Metric("eunomia_direct_reclaim_pages_total", {"kind": "memcg"}, 0)], ready="listening on"),
)
