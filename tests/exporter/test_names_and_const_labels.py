"""Issue 16 items 3 and 4 in the exporter's config and exposition:
`const_labels` (a fleet's `node` on every series, the exporter's own too) and
`total_suffix: false` (counters served as upstream's eunomia-exporter names
them, `eunomia_file_open_counter`), checked through prometheus_client's own
encoders and parsers, text and OpenMetrics, cached and library-only."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector

from pyeunomia.errors import ConfigError
from pyeunomia.exporter.collector import ConstLabelled, ExporterCollector
from pyeunomia.exporter.config import parse_config, program_from_request
from pyeunomia.exporter.event_metrics import EventMetric, MetricsWriter
from pyeunomia.exporter.exposition import CachedEncoder, SeriesFamily
from pyeunomia.exporter.instance import Snapshot
from pyeunomia.exporter.plan import plan_program

from .util import HEADER, ring

COUNTERS = """      counters:
        - name: eunomia_file_open_counter
          description: test
{extra}          labels:
            - name: comm
        - name: opens_by_name_total
          labels:
            - name: comm
"""


def text_config(top: str = "", per_metric: str = "") -> str:
    return f"{top}programs:\n  - name: opensnoop\n    metrics:\n" + COUNTERS.format(extra=per_metric)


class Programs:
    run_stats = False

    def __init__(self, snaps: list[Snapshot]):
        self.snaps = snaps

    def snapshots(self) -> list[Snapshot]:
        return self.snaps


def registry_for(text: str) -> CollectorRegistry:
    """The config's program fed 2 events of comm bash and 1 of cat."""
    cfg = parse_config(text, "c.yaml")
    plan = plan_program(cfg.programs[0])
    assert plan.layout is not None
    metrics = [EventMetric(m, plan.layout) for m in plan.metrics]
    writer = MetricsWriter(plan.layout, metrics, threading.Lock(), lambda: 5.0)
    records = [{"comm": b"bash"}, {"comm": b"bash"}, {"comm": b"cat"}]
    view, stride, n = ring(plan.layout, records)
    writer.write_run(view, HEADER, stride, len(records), n)
    snap = Snapshot(0, "opensnoop", True, writer.received, writer.lost)
    snap.events = [m.snapshot(6.0) for m in metrics]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(Programs([snap]), cfg.const_labels))  # type: ignore[arg-type]
    registry.register(ConstLabelled(ProcessCollector(registry=None), cfg.const_labels))
    return registry


def samples(text: str, openmetrics: bool = False) -> dict[tuple[str, str], dict[tuple[tuple[str, str], ...], float]]:
    """(family, type) -> sorted labels -> value, for the families of the program's counters."""
    parse = parse_openmetrics if openmetrics else text_string_to_metric_families
    out: dict[tuple[str, str], dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in parse(text):
        for s in fam.samples:
            out.setdefault((s.name, fam.type), {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def without_process(body: str) -> list[str]:
    return [line for line in body.splitlines() if "process_" not in line]


def test_the_default_keeps_total():
    cfg = parse_config(text_config(), "c.yaml")
    assert cfg.total_suffix and cfg.const_labels == ()
    text = CachedEncoder(generate_latest)(registry_for(text_config())).decode()
    got = samples(text)
    assert got[("eunomia_file_open_counter_total", "counter")] == {(("comm", "bash"),): 2, (("comm", "cat"),): 1}
    assert got[("opens_by_name_total", "counter")] == {(("comm", "bash"),): 2, (("comm", "cat"),): 1}


@pytest.mark.parametrize("where", ["config", "metric"])
def test_total_suffix_off_serves_upstreams_names(where: str):
    """`total_suffix: false` for the whole config, or on the one counter."""
    text = text_config("total_suffix: false\n" if where == "config" else "",
                       "" if where == "config" else "          total_suffix: false\n")
    if where == "config":  # every counter follows: a name already ending in _total is refused
        with pytest.raises(ConfigError, match="already ends in _total") as e:
            parse_config(text, "c.yaml")
        assert e.value.line == 10 and "drop the suffix" in str(e.value)
        # the second counter keeps its _total by its own setting
        text = text.replace("        - name: opens_by_name_total\n",
                            "        - name: opens_by_name_total\n          total_suffix: true\n")
    registry = registry_for(text)
    body = CachedEncoder(generate_latest)(registry).decode()
    assert "# TYPE eunomia_file_open_counter counter\n" in body
    assert ('# TYPE eunomia_file_open_counter counter\neunomia_file_open_counter{comm="bash"} 2.0\n'
            'eunomia_file_open_counter{comm="cat"} 1.0\n') in body
    assert "eunomia_file_open_counter_total" not in body  # (prometheus_client's parser would add it back)
    got = samples(body)
    kept = "opens_by_name_total"
    assert got[(kept, "counter")] == {(("comm", "bash"),): 2, (("comm", "cat"),): 1}
    # a second scrape through the cached line starts: the same bytes
    encoder = CachedEncoder(generate_latest)
    first, second = encoder(registry).decode(), encoder(registry).decode()
    assert without_process(first) == without_process(second) == without_process(body)  # process_*: CPU time moves
    # OpenMetrics requires _total on counters: the bare counter is an unknown family of the same samples
    om = CachedEncoder(generate_openmetrics)(registry).decode()
    assert "# TYPE eunomia_file_open_counter unknown\n" in om
    got = samples(om, openmetrics=True)
    assert got[("eunomia_file_open_counter", "unknown")] == {(("comm", "bash"),): 2, (("comm", "cat"),): 1}
    assert got[(kept, "counter")] == {(("comm", "bash"),): 2, (("comm", "cat"),): 1}


def test_library_only_fallback_keeps_the_bare_name():
    """Once the cache gives up (the library's output unexpected), a bare counter is an untyped family."""
    fam = SeriesFamily("eunomia_file_open_counter", "d", "counter", ("a",), [(("x",), 1)], bare=True)
    encoder = CachedEncoder(generate_latest)
    encoder._library_only = True

    class Registry:
        def collect(self):  # type: ignore[no-untyped-def]
            return iter([fam])
    body = encoder(Registry()).decode()
    assert body == ('# HELP eunomia_file_open_counter d\n# TYPE eunomia_file_open_counter untyped\n'
                    'eunomia_file_open_counter{a="x"} 1.0\n')


def test_const_labels_on_every_series():
    text = text_config("const_labels: {node: node-2, zone: 7}\n")
    assert parse_config(text, "c.yaml").const_labels == (("node", "node-2"), ("zone", "7"))
    for encode, om in ((generate_latest, False), (generate_openmetrics, True)):
        body = CachedEncoder(encode)(registry_for(text)).decode()
        got = samples(body, om)
        name = "eunomia_file_open_counter_total"
        assert got[(name, "counter")] == {(("comm", "bash"), ("node", "node-2"), ("zone", "7")): 2,
                                          (("comm", "cat"), ("node", "node-2"), ("zone", "7")): 1}
        received = got[("eunomia_exporter_events_received_total", "counter")]
        assert received == {(("id", "0"), ("node", "node-2"), ("program", "opensnoop"), ("zone", "7")): 3}
        everything = [labels for series in got.values() for labels in series]
        assert everything and all(("node", "node-2") in labels for labels in everything)
        assert any(n.startswith("process_") for n, _ in got)  # the process collector's too


@pytest.mark.parametrize(("top", "per_metric", "line", "words"), [
    ("const_labels: [node]\n", "", 1, "mapping of label names"),
    ("const_labels: {__node: x}\n", "", 1, "not a Prometheus label name"),
    ("const_labels: {le: x}\n", "", 1, "histogram buckets"),
    ("const_labels: {program: x}\n", "", 1, "the exporter's own"),
    ("const_labels: {node: {a: b}}\n", "", 1, "as text"),
    ("const_labels: {comm: x}\n", "", 9, "one of the config's const_labels"),
    ("total_suffix: 'no'\n", "", 1, "true or false"),
    ("", "          total_suffix: 1\n", 7, "true or false"),
])
def test_errors_name_the_line(top: str, per_metric: str, line: int, words: str):
    with pytest.raises(ConfigError, match=words) as e:
        parse_config(text_config(top, per_metric), "c.yaml")
    assert e.value.line == line, str(e.value)


def test_total_suffix_is_a_counters_option():
    text = ("programs:\n  - name: opensnoop\n    metrics:\n      gauges:\n        - name: fd\n          value: ret\n"
            "          total_suffix: false\n")
    with pytest.raises(ConfigError, match="unknown key 'total_suffix'"):
        parse_config(text, "c.yaml")


def test_the_apis_programs_take_the_configs_default():
    body = b'{"name": "opensnoop", "metrics": {"counters": [{"name": "eunomia_file_open_counter"}]}}'
    [bare] = program_from_request(body, ".", total_suffix=False).metrics
    [suffixed] = program_from_request(body, ".").metrics
    assert (bare.bare, bare.exposed_name) == (True, "eunomia_file_open_counter")
    assert (suffixed.bare, suffixed.exposed_name) == (False, "eunomia_file_open_counter")


PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")  # Prometheus 2.42's scrape header


def test_a_bare_counter_is_served_as_text_when_the_scraper_takes_it():
    from pyeunomia.exporter.server import metrics_encoder

    assert metrics_encoder(PROMETHEUS_ACCEPT)[1].startswith("application/openmetrics-text")
    assert metrics_encoder(PROMETHEUS_ACCEPT, prefer_text=True)[1] == "text/plain; version=0.0.4; charset=utf-8"
    assert metrics_encoder("", prefer_text=True)[1] == "text/plain; version=0.0.4; charset=utf-8"
    only_om = "application/openmetrics-text;version=1.0.0"
    assert metrics_encoder(only_om, prefer_text=True)[1].startswith("application/openmetrics-text")


def test_the_upstream_names_example():
    from tests.e2e.helpers import ROOT

    path = ROOT / "examples" / "opensnoop-upstream-names.yaml"
    cfg = parse_config(path.read_text(), str(path))
    [metric] = cfg.programs[0].metrics
    assert cfg.total_suffix is False and metric.bare and metric.exposed_name == "eunomia_file_open_counter"
    assert [label.name for label in metric.labels] == ["pid", "comm", "filename"]


def test_a_map_counter_and_an_event_histogram_with_const_labels_and_no_suffix():
    """Map metrics (read at scrape time, with an overflow series) and event
    histograms take the const labels too; a bare map counter keeps its name."""
    from pyeunomia.exporter.map_metrics import MapMetric

    text = ("const_labels: {node: n3}\ntotal_suffix: false\nprograms:\n  - name: opensnoop\n    metrics:\n"
            "      counters:\n        - name: opens_by_comm\n          map: opens\n          max_series: 1\n"
            "          labels:\n            - name: comm\n"
            "      histograms:\n        - name: open_flags_hist\n          value: flags\n"
            "          buckets: {type: explicit, bounds: [1, 100]}\n          labels:\n            - name: comm\n")
    cfg = parse_config(text, "c.yaml")
    plan = plan_program(cfg.programs[0])
    assert plan.layout is not None
    entries = [(b"bash".ljust(16, b"\0") + (0).to_bytes(4, "little"), (5).to_bytes(8, "little")),
               (b"cat".ljust(16, b"\0") + (2).to_bytes(4, "little"), (3).to_bytes(8, "little"))]
    [map_plan] = [m for m in plan.metrics if m.config.map]
    mm = MapMetric(map_plan, lambda: entries, 8)
    events = [EventMetric(m, plan.layout) for m in plan.metrics if not m.config.map]
    writer = MetricsWriter(plan.layout, events, threading.Lock(), lambda: 5.0)
    view, stride, n = ring(plan.layout, [{"comm": b"ls", "flags": 0}, {"comm": b"ls", "flags": 65}])
    writer.write_run(view, HEADER, stride, 2, n)
    snap = Snapshot(0, "opensnoop", True, writer.received, writer.lost)
    snap.events = [m.snapshot(6.0) for m in events]
    snap.maps = [(mm, mm.read())]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(Programs([snap]), cfg.const_labels))  # type: ignore[arg-type]
    body = CachedEncoder(generate_latest)(registry).decode()
    assert "# TYPE opens_by_comm counter\n" in body and "opens_by_comm_total" not in body
    assert ('opens_by_comm{comm="bash",node="n3"} 5.0\n' in body
            and 'opens_by_comm{node="n3",overflow="true"} 3.0\n' in body), body  # max_series 1: cat overflows
    got = samples(body)
    assert got[("open_flags_hist_bucket", "histogram")] == {
        (("comm", "ls"), ("le", "1.0"), ("node", "n3")): 1, (("comm", "ls"), ("le", "100.0"), ("node", "n3")): 2,
        (("comm", "ls"), ("le", "+Inf"), ("node", "n3")): 2}
    assert got[("open_flags_hist_sum", "histogram")] == {(("comm", "ls"), ("node", "n3")): 65}


def test_the_api_takes_the_configs_const_labels_and_suffix():
    """A program started through the API: the config's total_suffix is its
    default, and a label that is one of the const labels is refused."""
    from pyeunomia.cli.exporter import _start_from_request

    class Started:
        plan = None

        def start(self, plan: object) -> int:
            self.plan = plan
            return 7

    cfg = parse_config("const_labels: {node: n1}\ntotal_suffix: false\nprograms: []\n", "c.yaml")
    body = b'{"name": "opensnoop", "metrics": {"counters": [{"name": "c", "labels": [{"name": "comm"}]}]}}'
    started = Started()
    assert _start_from_request(started, body, cfg) == 7  # type: ignore[arg-type]
    assert started.plan is not None and started.plan.metrics[0].config.bare  # type: ignore[attr-defined]
    clash = body.replace(b'"name": "comm"', b'"name": "node", "from": "comm"')
    with pytest.raises(ConfigError, match="one of the config's const_labels"):
        _start_from_request(Started(), clash, cfg)  # type: ignore[arg-type]
