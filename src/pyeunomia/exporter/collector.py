"""The Prometheus collector: at scrape time, snapshot every running program
and turn its series, its maps and the exporter's own numbers into metric
families of the official prometheus_client library. Nothing happens at import
or registration time (describe() is empty).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from .buckets import BucketsConfig, slot_bounds
from .event_metrics import EventMetric, EventSeries
from .exposition import SeriesFamily
from .instance import Snapshot
from .map_metrics import MapMetric, MapReading
from .programs import ProgramSet

SELF = "eunomia_exporter_"
OVERFLOW = {"overflow": "true"}


class ExporterCollector:
    """`const`: (name, value) labels added to every series (the config's
    const_labels, such as a fleet's `node`)."""

    def __init__(self, programs: ProgramSet, const: tuple[tuple[str, str], ...] = ()):
        self.programs = programs
        self.const = const
        self._const_names = tuple(name for name, _ in const)
        self._const_values = tuple(value for _, value in const)
        self._le_cache: dict[tuple[tuple[float, ...], float], list[str]] = {}

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snaps = self.programs.snapshots()
        for snap in snaps:
            for es in snap.events:
                yield self._event_family(es)
            for mm, reading in snap.maps:
                yield self._map_family(mm, reading)
        for family in self._self_families(snaps):
            yield with_const(family, self.const)

    def _series(self, name: str, description: str, kind: str, label_names: tuple[str, ...], rows: Any,
                bare: bool) -> SeriesFamily:
        return SeriesFamily(name, description, kind, label_names, rows, bare=bare, const_names=self._const_names,
                            const_values=self._const_values)

    # -- metrics from events ---------------------------------------------------

    def _event_family(self, es: EventSeries) -> Metric:
        m = es.metric
        cfg = m.plan.config
        names = list(m.label_names)
        if cfg.kind == "counter":
            counter = self._series(m.plan.name, cfg.description, "counter", m.label_names,
                                   _scaled(es.items, cfg.multiplier), cfg.bare)
            if es.overflow is not None:
                counter.extra.append(Sample(counter.sample_name, {**dict(self.const), **OVERFLOW},
                                            es.overflow * cfg.multiplier))
            return counter
        if cfg.kind == "gauge":
            return self._series(m.plan.name, cfg.description, "gauge", m.label_names,
                                _scaled(es.items, cfg.multiplier), False)
        return self._event_histogram(m, es, names)

    def _event_histogram(self, m: EventMetric, es: EventSeries, names: list[str]) -> Metric:
        cfg = m.plan.config
        assert cfg.buckets is not None
        mult = cfg.buckets.multiplier
        les = self._les(m.bounds, mult)
        fam = HistogramMetricFamily(m.plan.name, cfg.description, labels=[*self._const_names, *names])
        const = self._const_values
        for labels, (buckets, total) in es.items:
            fam.add_metric(const + labels, _cumulative(les, buckets), total * mult)
        if es.overflow is not None:
            buckets, total = es.overflow
            _append_histogram(fam, {**dict(self.const), **OVERFLOW}, _cumulative(les, buckets), total * mult)
        return fam

    def _les(self, bounds: tuple[float, ...], mult: float) -> list[str]:
        key = (bounds, mult)
        les = self._le_cache.get(key)
        if les is None:
            # 15 significant digits: 15 us is le="1.5e-05", not the product's 1.4999999999999999e-05
            les = self._le_cache[key] = [_go_float(float(f"{b * mult:.15g}")) for b in bounds] + ["+Inf"]
        return les

    # -- metrics from maps ------------------------------------------------------

    def _map_family(self, mm: MapMetric, reading: MapReading) -> Metric:
        cfg = mm.plan.config
        names = list(mm.label_names)
        if cfg.kind in ("counter", "gauge"):
            family = self._series(mm.plan.name, cfg.description, cfg.kind, mm.label_names,
                                  _scaled(list(reading.values.items()), cfg.multiplier), cfg.bare)
            if reading.overflow is not None:
                family.extra.append(Sample(family.sample_name, {**dict(self.const), **OVERFLOW},
                                           reading.overflow * cfg.multiplier))
            return family
        mult = cfg.buckets.multiplier if cfg.buckets else 1.0
        fam = HistogramMetricFamily(mm.plan.name, cfg.description, labels=names)
        const = dict(self.const)
        for labels, slots in reading.values.items():
            _append_histogram(fam, {**const, **dict(zip(names, labels, strict=True))},
                              self._slot_buckets(slots, cfg.buckets, mult), None)
        if reading.overflow is not None:
            _append_histogram(fam, {**const, **OVERFLOW}, self._slot_buckets(reading.overflow, cfg.buckets, mult),
                              None)
        return fam

    def _slot_buckets(self, slots: list[int], buckets: BucketsConfig | None, mult: float) -> list[tuple[str, float]]:
        """Slot i of a log2 histogram (libbpf-tools' log2l) counts values from
        2^i to 2^(i+1)-1, slot 0 also 0: its inclusive upper bound is 2^(i+1)-1;
        slot i of a linear one counts value i."""
        return _cumulative(self._les(slot_bounds(len(slots), buckets), mult), [*slots, 0])

    # -- the exporter's own metrics --------------------------------------------

    def _self_families(self, snaps: list[Snapshot]) -> Iterator[Metric]:
        ids = ["id", "program"]
        received = CounterMetricFamily(SELF + "events_received", "Events read from the program's ring or perf "
                                       "buffers", labels=ids)
        lost = CounterMetricFamily(SELF + "events_lost", "Events lost: the buffer was full (kernel side) or "
                                   "overwritten", labels=ids)
        up = GaugeMetricFamily(SELF + "program_up", "1 while the program is loaded and its events are read",
                               labels=ids)
        run_time = CounterMetricFamily(SELF + "bpf_run_time_seconds", "Time the kernel spent running the BPF "
                                       "program (kernel.bpf_stats_enabled)", labels=[*ids, "bpf_program"])
        run_count = CounterMetricFamily(SELF + "bpf_run_count", "Times the kernel ran the BPF program "
                                        "(kernel.bpf_stats_enabled)", labels=[*ids, "bpf_program"])
        series = GaugeMetricFamily(SELF + "series", "Distinct label sets held for the metric (without the "
                                   "overflow series)", labels=["metric"])
        refused = CounterMetricFamily(SELF + "label_sets_refused", "New label sets counted in the overflow "
                                      "series because the metric was at its limit (once per batch)",
                                      labels=["metric"])
        expired = CounterMetricFamily(SELF + "series_expired", "Series dropped after expire_after without "
                                      "updates", labels=["metric"])
        over = GaugeMetricFamily(SELF + "map_label_sets_over_limit", "Label sets of a map metric summed into "
                                 "its overflow series at this scrape", labels=["metric"])
        for snap in snaps:
            who = [str(snap.id), snap.name]
            received.add_metric(who, snap.received)
            lost.add_metric(who, snap.lost)
            up.add_metric(who, 1 if snap.up else 0)
            for bpf_name, ns, runs in snap.run_stats:
                run_time.add_metric([*who, bpf_name], ns / 1e9)
                run_count.add_metric([*who, bpf_name], runs)
            for es in snap.events:
                name = [es.metric.plan.name]
                series.add_metric(name, es.series)
                refused.add_metric(name, es.refused)
                if es.metric.plan.config.expire_after is not None:
                    expired.add_metric(name, es.expired)
            for mm, reading in snap.maps:
                series.add_metric([mm.plan.name], len(reading.values))
                over.add_metric([mm.plan.name], reading.over_limit)
        yield from (received, lost, up, series, refused, expired, over)
        if self.programs.run_stats:
            yield run_time
            yield run_count


class ConstLabelled:
    """Another collector's families (prometheus_client's ProcessCollector)
    with the const labels added to each sample: a few samples a scrape."""

    def __init__(self, inner: Any, const: tuple[tuple[str, str], ...]):
        self.inner = inner
        self.const = const

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for family in self.inner.collect():
            yield with_const(family, self.const)


def with_const(family: Metric, const: tuple[tuple[str, str], ...]) -> Metric:
    """The family with the const labels in every sample (the same family when there are none)."""
    if const:
        labels = dict(const)
        family.samples = [s._replace(labels={**labels, **s.labels}) for s in family.samples]
    return family


def _go_float(value: float) -> str:
    """A bound as Prometheus writes it (1, 0.5, 1e+06): the client's own format."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def _cumulative(les: list[str], counts: list[int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0
    for le, n in zip(les, counts, strict=True):
        total += n
        out.append((le, total))
    return out


def _scaled(items: list[tuple[tuple[str, ...], Any]], multiplier: float) -> list[tuple[tuple[str, ...], Any]]:
    return items if multiplier == 1.0 else [(labels, value * multiplier) for labels, value in items]


def _append_histogram(fam: Metric, labels: dict[str, str], buckets: list[tuple[str, float]],
                      total: float | None) -> None:
    """Buckets (and count and sum, when the sum is known) with these labels.
    A map's log2 slots have no sum, so no count either (OpenMetrics allows
    neither alone): their count is the +Inf bucket."""
    name = fam.name
    for le, value in buckets:
        fam.samples.append(Sample(name + "_bucket", {**labels, "le": le}, value))
    if total is not None:
        fam.samples.append(Sample(name + "_count", dict(labels), buckets[-1][1]))
        fam.samples.append(Sample(name + "_sum", dict(labels), total))
