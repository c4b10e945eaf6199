"""The collector's output through prometheus_client's own encoders, parsed
back with its own parsers: Prometheus text and OpenMetrics."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from pyeunomia.exporter.collector import ExporterCollector
from pyeunomia.exporter.event_metrics import EventMetric, MetricsWriter
from pyeunomia.exporter.instance import Snapshot
from pyeunomia.exporter.map_metrics import MapMetric

from ..conftest import UPSTREAM
from .util import HEADER, config, plan_of, ring

METRICS = """      counters:
        - name: eunomia_file_open_counter
          description: test
          max_series: 2
          labels:
            - name: comm
            - name: filename
              from: fname
      histograms:
        - name: name_length
          description: file name lengths
          value: fname_len
          buckets: {type: exp2, min: 0, max: 3, multiplier: 0.5}
          expire_after: 1h
"""


class Programs:
    """What the collector asks the running programs for."""

    run_stats = True

    def __init__(self, snaps: list[Snapshot]):
        self.snaps = snaps

    def snapshots(self) -> list[Snapshot]:
        return self.snaps


def registry_with(snaps: list[Snapshot]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(Programs(snaps)))  # type: ignore[arg-type]
    return registry


def event_snapshot() -> Snapshot:
    plan = plan_of(config(METRICS))
    assert plan.layout is not None
    metrics = [EventMetric(m, plan.layout) for m in plan.metrics]
    writer = MetricsWriter(plan.layout, metrics, threading.Lock(), lambda: 5.0)
    records = [{"comm": b"bash", "fname": b"/etc/passwd", "fname_len": 11}] * 3
    records += [{"comm": b"cat", "fname": b'/tmp/"x"', "fname_len": 8},
                {"comm": b"cat", "fname": b"/a", "fname_len": 2}]
    records += [{"comm": b"ls", "fname": b"/b", "fname_len": 2}]
    view, stride, n = ring(plan.layout, records)
    writer.write_run(view, HEADER, stride, len(records), n)
    writer.report_lost(4, "kernel")
    snap = Snapshot(0, "opensnoop", True, writer.received, writer.lost, [("trace_exit_openat", 2_500_000_000, 42)])
    snap.events = [m.snapshot(6.0) for m in metrics]
    return snap


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_counters_histograms_and_self_metrics_in_text_format():
    text = generate_latest(registry_with([event_snapshot()])).decode()
    fams = families(text)
    counter = {tuple(sorted(s.labels.items())): s.value for s in fams["eunomia_file_open_counter"].samples}
    assert counter == {(("comm", "bash"), ("filename", "/etc/passwd")): 3,
                       (("comm", "cat"), ("filename", '/tmp/"x"')): 1,
                       (("overflow", "true"),): 2}
    assert 'filename="/tmp/\\"x\\""' in text  # the exposition escapes the quote; the value itself is clean
    hist = {(s.name, s.labels.get("le")): s.value for s in fams["name_length"].samples}
    # bounds 1, 2, 4, 8 exported as 0.5, 1, 2, 4; lengths 11, 11, 11, 8, 2, 2
    assert hist[("name_length_bucket", "1.0")] == 2 and hist[("name_length_bucket", "4.0")] == 3
    assert hist[("name_length_bucket", "+Inf")] == 6 and hist[("name_length_count", None)] == 6
    assert hist[("name_length_sum", None)] == (33 + 8 + 4) * 0.5
    selfs = {(f.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values()
             if f.name.startswith("eunomia_exporter_") for s in f.samples}
    who = (("id", "0"), ("program", "opensnoop"))
    assert selfs[("eunomia_exporter_events_received", who)] == 6
    assert selfs[("eunomia_exporter_events_lost", who)] == 4
    assert selfs[("eunomia_exporter_program_up", who)] == 1
    prog = (("bpf_program", "trace_exit_openat"), *who)
    assert selfs[("eunomia_exporter_bpf_run_time_seconds", prog)] == 2.5
    assert selfs[("eunomia_exporter_bpf_run_count", prog)] == 42
    assert selfs[("eunomia_exporter_series", (("metric", "eunomia_file_open_counter"),))] == 2
    assert selfs[("eunomia_exporter_label_sets_refused", (("metric", "eunomia_file_open_counter"),))] == 2
    assert selfs[("eunomia_exporter_series_expired", (("metric", "name_length"),))] == 0


def test_openmetrics_output_parses():
    text = generate_openmetrics(registry_with([event_snapshot()])).decode()
    assert text.endswith("# EOF\n")
    fams = {f.name: f for f in parse_openmetrics(text)}
    assert fams["eunomia_file_open_counter"].type == "counter"
    assert fams["name_length"].type == "histogram"


def test_a_log2_map_histogram():
    plan = plan_of(config("      histograms:\n        - name: runq_latency_seconds\n          map: hists\n"
                          "          buckets: {type: exp2, multiplier: 0.000001}\n", name="runqlat",
                          extra=f"    compiled_ebpf_filename: {UPSTREAM / 'runqlat.json'}\n"))
    slots = [0, 2, 5] + [0] * 23
    value = b"".join(n.to_bytes(4, "little") for n in slots) + b"\0" * 16
    entries = [((0xFFFFFFFF).to_bytes(4, "little"), value)]
    mm = MapMetric(plan.metrics[0], lambda: entries, len(value))
    snap = Snapshot(1, "runqlat", True, 0, 0)
    snap.maps = [(mm, mm.read())]
    text = generate_latest(registry_with([snap])).decode()
    samples = families(text)["runq_latency_seconds"].samples
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    # slot 0: 0..1, slot 1: 2..3, slot 2: 4..7 (microseconds, exported in seconds)
    assert buckets["1e-06"] == 0 and buckets["3e-06"] == 2 and buckets["7e-06"] == 7 and buckets["+Inf"] == 7
    assert "runq_latency_seconds_sum" not in text  # the kernel keeps no sum
    assert {f.name for f in parse_openmetrics(generate_openmetrics(registry_with([snap])).decode())} >= {
        "runq_latency_seconds"}


def test_nothing_is_collected_at_registration():
    class Exploding(Programs):
        def snapshots(self) -> list[Snapshot]:
            raise AssertionError("collected too early")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(Exploding([])))  # type: ignore[arg-type]
