"""Labels the catalogue's maps and events need: byte-array members (IPv4 and
IPv6 addresses), a decoder reading a sibling member (inet's `family`) in a
map key and in an event, and counters and gauges scaled by `multiplier`
(ns to seconds). Planned against the real built-in tcpconnect package."""

from __future__ import annotations

import re
import socket
import threading

import pytest

from pyeunomia.errors import ConfigError
from pyeunomia.exporter.collector import ExporterCollector
from pyeunomia.exporter.event_metrics import EventMetric, MetricsWriter
from pyeunomia.exporter.instance import Snapshot
from pyeunomia.exporter.map_metrics import MapMetric

from .util import HEADER, config, plan_of, ring

V4 = socket.inet_pton(socket.AF_INET, "127.0.0.1").ljust(16, b"\0")
V4B = socket.inet_pton(socket.AF_INET, "10.1.2.3").ljust(16, b"\0")
V6 = socket.inet_pton(socket.AF_INET6, "::1")


def conn_key(saddr: bytes, daddr: bytes, af: int, dport: int) -> bytes:
    """tcpconnect's struct conn_key: saddr[16], daddr[16], u16 af, u16 dport."""
    return saddr + daddr + af.to_bytes(2, "little") + dport.to_bytes(2, "little")


COUNTS = """      counters:
        - name: connects
          map: counts
          labels:
            - name: daddr
              decoders: [{{name: inet, family: af}}]
            - name: dport
{extra}"""


def counts_metric(entries: list[tuple[bytes, bytes]], extra: str = "") -> MapMetric:
    plan = plan_of(config(COUNTS.format(extra=extra), name="tcpconnect"))
    return MapMetric(plan.metrics[0], lambda: entries, 8)


def test_a_map_key_address_decoded_with_its_family_member():
    one = (1).to_bytes(8, "little")
    m = counts_metric([(conn_key(V4, V4, 2, 80), one), (conn_key(V4, V4B, 2, 80), (3).to_bytes(8, "little")),
                       (conn_key(V6, V6, 10, 80), (2).to_bytes(8, "little")),
                       (conn_key(V4, V4, 2, 443), (5).to_bytes(8, "little"))])
    assert m.read().values == {("127.0.0.1", "80"): 1, ("10.1.2.3", "80"): 3, ("::1", "80"): 2,
                               ("127.0.0.1", "443"): 5}


def test_a_byte_array_without_decoder_is_hex():
    plan = plan_of(config("      counters:\n        - name: c\n          map: counts\n          labels:\n"
                          "            - name: saddr\n", name="tcpconnect"))
    m = MapMetric(plan.metrics[0], lambda: [(conn_key(V4, V4, 2, 1), (1).to_bytes(8, "little"))], 8)
    assert m.read().values == {(V4.hex(),): 1}


def test_an_event_address_decoded_with_its_family_member():
    plan = plan_of(config("""      counters:
        - name: connects
          labels:
            - name: daddr
              decoders: [{name: inet, family: af}]
            - name: comm
""", name="tcpconnect"))
    assert plan.layout is not None
    [metric] = [EventMetric(m, plan.layout) for m in plan.metrics]
    writer = MetricsWriter(plan.layout, [metric], threading.Lock(), lambda: 1.0)
    records = [{"af": 2, "daddr": V4, "comm": b"curl"}, {"af": 10, "daddr": V6, "comm": b"curl"},
               {"af": 2, "daddr": V4B, "comm": b"nc"}, {"af": 2, "daddr": V4, "comm": b"curl"}]
    view, stride, n = ring(plan.layout, records)
    writer.write_run(view, HEADER, stride, len(records), n)
    assert {k: c.value for k, c in metric.store.cells.items()} == {
        ("127.0.0.1", "curl"): 2, ("::1", "curl"): 1, ("10.1.2.3", "nc"): 1}


@pytest.mark.parametrize("family, words", [
    ("nope", "family 'nope' is not another integer key member of the struct"),
    ("daddr", "family 'daddr' is not another integer key member"),
    ("saddr", "is not another integer key member"),  # an array, not a family number
])
def test_a_sibling_that_is_not_an_integer_member_is_refused(family, words):
    text = config("      counters:\n        - name: c\n          map: counts\n          labels:\n"
                  f"            - name: daddr\n              decoders: [{{name: inet, family: {family}}}]\n",
                  name="tcpconnect")
    with pytest.raises(ConfigError, match=words) as e:
        plan_of(text)
    assert str(e.value).startswith("c.yaml:9: programs[0].metrics.counters[0].labels[0].decoders[0].family: ")


def test_a_counter_multiplier_scales_map_values():
    m = counts_metric([(conn_key(V4, V4, 2, 80), (1500).to_bytes(8, "little"))], "          multiplier: 0.001\n")
    snap = Snapshot(1, "tcpconnect", True, 0, 0)
    snap.maps = [(m, m.read())]
    collector = ExporterCollector(None)  # type: ignore[arg-type]
    [sample] = [s for f in [collector._map_family(m, snap.maps[0][1])] for s in f.samples]
    assert sample.name == "connects_total" and sample.value == pytest.approx(1.5)
    assert sample.labels == {"daddr": "127.0.0.1", "dport": "80"}


def test_a_multiplier_needs_a_value_to_scale():
    with pytest.raises(ConfigError, match="nothing to scale"):
        plan_of(config("      counters:\n        - name: c\n          multiplier: 2\n", name="tcpconnect"))


def test_scaled_bounds_are_written_as_people_read_them():
    """Slot bounds 2^(i+1)-1 us in seconds: 15 us is 1.5e-05, not the product's 1.4999999999999999e-05."""
    les = ExporterCollector(None)._les((1.0, 3.0, 7.0, 15.0, 255.0), 0.000001)  # type: ignore[arg-type]
    assert les == ["1e-06", "3e-06", "7e-06", "1.5e-05", "0.000255", "+Inf"]


def test_a_ksym_label_reads_kallsyms_while_planned(monkeypatch):
    """The exporter plans as root and then becomes nobody, who sees /proc/kallsyms as zeros:
    the symbol table is read when the label is planned, not at the first event."""
    from pyeunomia.decoders import ksym
    reads: list[str] = []
    real = ksym.read_kallsyms
    monkeypatch.setattr(ksym, "read_kallsyms", lambda path="/proc/kallsyms": reads.append(path) or real(path))
    plan = plan_of(config("      counters:\n        - name: drops\n          labels:\n            - name: location\n"
                          "              decoders: [{name: ksym, offset: false}]\n", name="tcpdrop"))
    assert reads == ["/proc/kallsyms"]
    monkeypatch.setattr(ksym, "read_kallsyms", lambda path="/proc/kallsyms": pytest.fail("read again"))
    with open("/proc/kallsyms") as f:
        address, _, name = next(line.split()[:3] for line in f if " T tcp_v4_rcv" in line)
    assert plan.metrics[0].labels[0].text(int(address, 16)) == (name if int(address, 16) else "0x0")


RUNQLEN = """      histograms:
        - name: runq_length
          global: {name}
          buckets: {{type: linear}}
{labels}"""


def test_a_global_array_of_linear_histograms_per_index():
    """runqlen keeps its histograms in .bss (cpu_hists[MAX_CPU_NR]): each element that is not all
    zero is a histogram labelled by its index; slot i counts value i (le="i")."""
    plan = plan_of(config(RUNQLEN.format(name="cpu_hists", labels="          labels:\n            - name: cpu\n"
                                                                   "              from: key\n"), name="runqlen"))
    [metric] = plan.metrics
    g = next(g for g in plan.package.spec.globals if g.name == "cpu_hists")
    elem = g.size // 128 if g.size % 128 == 0 else None
    assert metric.map is not None and metric.map.section_entries is not None and elem
    section = bytearray(g.offset + g.size)
    slots = elem // 4
    cpu3 = [0] * slots
    cpu3[0], cpu3[2], cpu3[slots - 1] = 4, 1, 2
    section[g.offset + 3 * elem:g.offset + 4 * elem] = b"".join(n.to_bytes(4, "little") for n in cpu3)
    m = MapMetric(metric, lambda: metric.map.section_entries(bytes(section)), 8)  # type: ignore[union-attr]
    reading = m.read()
    assert reading.values == {("3",): cpu3}  # the other CPUs' all-zero histograms are left out
    fam = ExporterCollector(None)._map_family(m, reading)  # type: ignore[arg-type]
    buckets = {s.labels["le"]: s.value for s in fam.samples}
    assert buckets["0.0"] == 4 and buckets["1.0"] == 4 and buckets["2.0"] == 5
    assert buckets[f"{slots - 1}.0"] == 7 and buckets["+Inf"] == 7 and len(buckets) == slots + 1


def test_a_global_struct_is_one_entry():
    plan = plan_of(config(RUNQLEN.format(name="hist", labels=""), name="runqlen"))
    [metric] = plan.metrics
    g = next(g for g in plan.package.spec.globals if g.name == "hist")
    section = bytearray(g.offset + g.size)
    section[g.offset:g.offset + 8] = (5).to_bytes(4, "little") + (6).to_bytes(4, "little")
    m = MapMetric(metric, lambda: metric.map.section_entries(bytes(section)), 8)  # type: ignore[union-attr]
    assert m.read().values == {(): [5, 6] + [0] * (g.size // 4 - 2)}


@pytest.mark.parametrize("metric, words", [
    ("          global: nope\n          buckets: {type: linear}\n", "no global 'nope' in .data or .bss"),
    ("          global: hist\n          map: hist\n", "either map or global"),
    ("          global: hist\n          buckets: {type: linear, width: 2}\n", "linear slots set its buckets"),
    ("          global: hist\n          buckets: {type: explicit, bounds: [1]}\n", "exp2 (log2 slots) or linear"),
    ("          global: cpu_hists\n          labels: [{name: cpu}]\n", "keyed by their index"),
])
def test_global_and_linear_mistakes(metric, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        plan_of(config("      histograms:\n        - name: h\n" + metric, name="runqlen"))
