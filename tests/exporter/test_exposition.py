"""The cached encoder: its /metrics bodies are byte for byte those of
prometheus_client's own encoders, scrape after scrape, as series come, change
and go, in every format the server may choose."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.samples import Sample

from pyeunomia.exporter.exposition import VARIANTS_MAX, CachedEncoder, Encoders, SeriesFamily
from pyeunomia.exporter.server import metrics_encoder

ACCEPTS = [
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",  # Prometheus
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0;escaping=underscores",
    "application/openmetrics-text;version=2.0.0;escaping=allow-utf-8",
    "text/plain;version=1.0.0;escaping=values",
    "text/plain",
    "",
]
NAMES = ("pid", "comm", "filename")
ODD = ['say "hi"', "back\\slash", "new\nline", "cr\rlf", "sep\u2028ara", "ünï cødé", "", "} 0.0", "a b c", "=\"x\"}"]


class Families:
    """A collector making new families from `spec` at every collect, as
    ExporterCollector does: (kind, name, label names, rows, overflow)."""

    def __init__(self, cached: bool):
        self.cached = cached  # SeriesFamily, or the library's own family classes
        self.spec: list[tuple[str, str, tuple[str, ...], list[tuple[tuple[str, ...], Any]], Any]] = []

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for kind, name, names, rows, overflow in self.spec:
            if self.cached:
                fam = SeriesFamily(name, f"help for {name} \\ \"q\"\n", kind, names, list(rows))
                if overflow is not None:
                    fam.extra.append(Sample(fam.sample_name, {"overflow": "true"}, overflow))
                yield fam
                continue
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            lib = cls(name, f"help for {name} \\ \"q\"\n", labels=list(names))
            for labels, value in rows:
                lib.add_metric(list(labels), value)
            if overflow is not None:
                lib.samples.append(Sample(lib.name + "_total", {"overflow": "true"}, overflow))
            yield lib
        hist = HistogramMetricFamily("lengths", "a histogram", labels=["comm"])
        hist.add_metric(['b"a\\sh'], [("1.0", 1), ("+Inf", 3)], 7.5)
        yield hist
        yield GaugeMetricFamily("eunomia_exporter_program_up", "up", value=1)


def registries() -> tuple[CollectorRegistry, CollectorRegistry, Families, Families]:
    ours, theirs = Families(True), Families(False)
    reg_ours, reg_theirs = CollectorRegistry(auto_describe=False), CollectorRegistry(auto_describe=False)
    reg_ours.register(ours)
    reg_theirs.register(theirs)
    return reg_ours, reg_theirs, ours, theirs


def set_spec(a: Families, b: Families, spec: list[Any]) -> None:
    a.spec = b.spec = spec


def rows_of(prefix: str, n: int, value: Any = 1) -> list[tuple[tuple[str, ...], Any]]:
    return [((str(1000 + i % 3), ODD[i % len(ODD)], f"{prefix}/{ODD[(i + 3) % len(ODD)]}-{i}"), value)
            for i in range(n)]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_byte_identical_to_the_library_as_series_come_change_and_go(accept):
    library, _ = metrics_encoder(accept)
    cached = CachedEncoder(library)
    reg_ours, reg_theirs, ours, theirs = registries()

    def check() -> None:
        expected = library(reg_theirs)
        assert library(reg_ours) == expected  # SeriesFamily's samples are the library families' samples
        assert cached(reg_ours) == expected
        assert cached(reg_ours) == expected  # again, from the cache
        assert cached.lines_kept >= sum(len(rows) for _, _, _, rows, _ in ours.spec)

    gauge_values = [0, 0.0, -0.0, 1, -1, 0.5, 1e7, 123456789, 2**60, math.inf, -math.inf, math.nan, True, 1e-9]
    set_spec(ours, theirs, [
        ("counter", "eunomia_file_open_counter", NAMES, rows_of("/tmp", 40), None),
        ("gauge", "open_gauge", ("comm",), [((f"c{i}",), v) for i, v in enumerate(gauge_values)], None),
    ])
    check()
    # the same label sets with new values (-0.0 after 0 and the other way round), some gone, some new
    set_spec(ours, theirs, [
        ("counter", "eunomia_file_open_counter", NAMES, rows_of("/tmp", 30, 7) + rows_of("/new", 5, 2), 12),
        ("gauge", "open_gauge", ("comm",), [((f"c{i}",), v) for i, v in enumerate(reversed(gauge_values))], None),
        ("counter", "no_labels_total", (), [((), 3)], None),
    ])
    check()
    set_spec(ours, theirs, [("counter", "no_labels_total", (), [((), 4)], 5)])  # a program stopped
    check()
    set_spec(ours, theirs, [])
    check()


def test_the_tutorial_collector_output_through_the_server_encoder():
    """ExporterCollector's real families (tests/exporter/test_collector.py's
    snapshot) through every format."""
    from .test_collector import event_snapshot, registry_with

    registry = registry_with([event_snapshot()])
    for accept in ACCEPTS:
        library, _ = metrics_encoder(accept)
        cached = Encoders().get(library)
        assert cached(registry) == cached(registry) == library(registry)
        assert cached.lines_kept == 2  # the counter's two series (its max_series); the histogram is not cached


def test_output_not_shaped_as_expected_falls_back_to_the_library():
    library, _ = choose_encoder("text/plain")

    def commented(registry: Any) -> bytes:  # sample lines that do not end with the value
        return library(registry).replace(b"\n", b" # x\n")

    reg_ours, reg_theirs, ours, theirs = registries()
    set_spec(ours, theirs, [("counter", "c", ("a",), [(("x",), 1)], None)])
    cached = CachedEncoder(commented)
    assert cached(reg_ours) == commented(reg_theirs)
    assert cached(reg_ours) == commented(reg_theirs)
    assert cached.lines_kept == 0


def test_samples_made_or_set_are_what_gets_encoded():
    fam = SeriesFamily("c_total", "d", "counter", ("a",), [(("x",), 1)])
    assert fam.name == "c" and fam.sample_name == "c_total" and fam.as_rows
    assert fam.samples == [Sample("c_total", {"a": "x"}, 1)] and not fam.as_rows
    fam.samples.append(Sample("c_total", {"a": "y"}, 2))

    class One:
        def collect(self) -> Iterator[Metric]:
            yield fam

    assert CachedEncoder(generate_latest)(One()) == generate_latest(One())
    assert b'c_total{a="y"} 2.0' in generate_latest(One())


def test_one_cached_encoder_per_library_encoder_the_latest_few_kept():
    encoders = Encoders()
    first = encoders.get(metrics_encoder(ACCEPTS[0])[0])
    assert encoders.get(metrics_encoder(ACCEPTS[0])[0]) is first
    assert encoders.get(metrics_encoder("text/plain")[0]) is not first
    # VARIANTS_MAX other encoders: functions of their own, not OpenMetrics versions (prometheus_client
    # before 0.21, Debian 12's 0.16, has one encoder per format, whatever the version asked)
    for _ in range(VARIANTS_MAX):
        encoders.get(lambda registry: generate_latest(registry))
    assert encoders.get(metrics_encoder(ACCEPTS[0])[0]) is not first
