"""Map metrics from map entries (bytes as the kernel's batch lookup returns
them): labels from key members, per-CPU sums, grouping, the limit."""

from __future__ import annotations

from pyeunomia.exporter.map_metrics import MapMetric

from .util import config, plan_of

OPENS = """      counters:
        - name: opens
          map: opens
          max_series: {limit}
          labels:
{labels}
"""


def key(comm: bytes, err: int) -> bytes:
    return comm.ljust(16, b"\0") + err.to_bytes(4, "little", signed=True)


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def metric(entries, labels="            - name: comm\n            - name: result\n              from: err\n"
                            "              decoders: [errno]", limit=100, stride=8) -> MapMetric:
    plan = plan_of(config(OPENS.format(labels=labels, limit=limit)))
    return MapMetric(plan.metrics[0], lambda: entries, stride)


def test_key_members_become_labels_and_values_counters():
    m = metric([(key(b"bash", 0), u64(5)), (key(b"bash", 2), u64(3)), (key(b"cat", 13), u64(1))])
    reading = m.read()
    assert reading.values == {("bash", "ok"): 5, ("bash", "ENOENT"): 3, ("cat", "EACCES"): 1}
    assert reading.overflow is None and reading.over_limit == 0


def test_entries_with_the_same_labels_are_added():
    m = metric([(key(b"bash", 0), u64(5)), (key(b"cat", 0), u64(3)), (key(b"cat", 2), u64(1))],
               labels="            - name: result\n              from: err\n              decoders: [errno]")
    assert m.read().values == {("ok",): 8, ("ENOENT",): 1}


def test_per_cpu_values_are_summed():
    m = metric([(key(b"bash", 0), u64(5) + u64(7))])
    object.__setattr__(m.source, "percpu", True)
    assert m.read().values == {("bash", "ok"): 12}


def test_beyond_the_limit_the_rest_overflow_and_the_kept_sets_stay():
    entries = [(key(b"p%d" % i, 0), u64(i + 1)) for i in range(5)]
    m = metric(entries, limit=3)
    first = m.read()
    assert len(first.values) == 3 and first.over_limit == 2
    assert sum(first.values.values()) + first.overflow == 15
    again = m.read()
    assert set(again.values) == set(first.values)
    m._read_entries = lambda: list(reversed(entries))
    assert set(m.read().values) == set(first.values)
