"""Event metrics from runs of ring-buffer records laid out as opensnoop's
BPF program writes them: exact counts, clean labels, buckets, limits."""

from __future__ import annotations

import os
import threading

import pytest

from pyeunomia.exporter.event_metrics import EventMetric, MetricsWriter
from pyeunomia.format.layout import Layout
from pyeunomia.format.rows import compile_rows

from .util import HEADER, config, plan_of, ring


def writer_for(metrics_yaml: str, clock=lambda: 1.0) -> tuple[MetricsWriter, Layout]:
    plan = plan_of(config(metrics_yaml))
    assert plan.layout is not None
    metrics = [EventMetric(m, plan.layout) for m in plan.metrics]
    return MetricsWriter(plan.layout, metrics, threading.Lock(), clock), plan.layout


def feed(writer: MetricsWriter, layout: Layout, records: list[dict], length: int | None = None) -> None:
    view, stride, n = ring(layout, records, length)
    writer.write_run(view, HEADER, stride, len(records), n)


def values(writer: MetricsWriter, i: int = 0) -> dict:
    return {k: c.value for k, c in writer.metrics[i].store.cells.items()}


TUTORIAL = """      counters:
        - name: eunomia_file_open_counter
          labels:
            - name: pid
            - name: comm
            - name: filename
              from: fname
"""


def test_each_event_counts_once_with_clean_labels():
    w, layout = writer_for(TUTORIAL)
    a = {"pid": 10, "comm": b"bash", "fname": b"/etc/passwd"}
    b = {"pid": 11, "comm": b"cat\n", "fname": b"/tmp/\xff\"q\""}
    feed(w, layout, [a, b, a, a])
    feed(w, layout, [a, {**b, "fname": b"/tmp/\xff\"q\"\0garbage after the end"}])
    assert values(w) == {("10", "bash", "/etc/passwd"): 4, ("11", "cat\\n", '/tmp/\\xff"q"'): 2}
    assert w.received == 6


def test_enum_bool_and_decoded_labels():
    w, layout = writer_for("""      counters:
        - name: opens
          labels:
            - name: syscall
            - name: result
              from: ret
              decoders: [result]
            - name: flags
              decoders: [open_flags]
""")
    feed(w, layout, [{"syscall": 1, "ret": 3, "flags": os.O_RDONLY}, {"syscall": 1, "ret": 7, "flags": os.O_RDONLY},
                     {"syscall": 3, "ret": -13, "flags": os.O_WRONLY | os.O_CREAT | os.O_TRUNC},
                     {"syscall": 9, "ret": -2, "flags": 0}])
    assert values(w) == {("SYS_OPENAT", "ok", "O_RDONLY"): 2, ("SYS_CREAT", "EACCES", "O_WRONLY|O_CREAT|O_TRUNC"): 1,
                         ("9", "ENOENT", "O_RDONLY"): 1}  # an unknown enum value: its number


def test_counter_without_labels_and_valued_counter():
    w, layout = writer_for("""      counters:
        - name: all_opens
        - name: name_bytes
          value: fname_len
          labels: [{name: comm}]
""")
    feed(w, layout, [{"comm": b"a", "fname_len": 5}, {"comm": b"a", "fname_len": 7}, {"comm": b"b", "fname_len": 1}])
    assert values(w, 0) == {(): 3}
    assert values(w, 1) == {("a",): 12, ("b",): 1}


def test_histogram_buckets_are_inclusive_upper_bounds():
    w, layout = writer_for("""      histograms:
        - name: name_length
          value: fname_len
          buckets: {type: explicit, bounds: [1, 4, 16]}
          labels: [{name: comm}]
""")
    feed(w, layout, [{"comm": b"a", "fname_len": n} for n in (0, 1, 2, 4, 5, 16, 17, 300)])
    [cell] = w.metrics[0].store.cells.values()
    assert cell.buckets == [2, 2, 2, 2] and cell.sum == 0 + 1 + 2 + 4 + 5 + 16 + 17 + 300


def test_gauge_keeps_the_last_value():
    w, layout = writer_for("""      gauges:
        - name: last_fd
          value: ret
          labels: [{name: comm}]
""")
    feed(w, layout, [{"comm": b"a", "ret": 3}, {"comm": b"b", "ret": 4}, {"comm": b"a", "ret": 9}])
    assert values(w) == {("a",): 9, ("b",): 4}


def test_short_records_are_zero_padded():
    w, layout = writer_for(TUTORIAL)
    feed(w, layout, [{"pid": 1, "comm": b"x", "fname": b"/a/long/name"}] * 2, length=72)  # fname cut to 8 bytes
    assert values(w) == {("1", "x", "/a/long/"): 2}


def test_many_distinct_names_stay_within_the_limit():
    w, layout = writer_for(TUTORIAL.replace("      counters:\n        - name: eunomia_file_open_counter\n",
                                            "      counters:\n        - name: c\n          max_series: 100\n"))
    for start in range(0, 5000, 500):
        feed(w, layout, [{"pid": 1, "comm": b"x", "fname": b"/f%d" % i} for i in range(start, start + 500)])
    store = w.metrics[0].store
    assert len(store) == 100 and store.overflow.value == 4900 and store.refused == 4900
    assert sum(c.value for c in store.cells.values()) + store.overflow.value == 5000


def test_lost_events_are_counted():
    w, _layout = writer_for(TUTORIAL)
    w.report_lost(3, "kernel")
    w.report_lost(2, "kernel")
    assert w.lost == 5


def test_compile_rows_tuple_mode_reads_only_the_cells():
    plan = plan_of(config(TUTORIAL))
    layout = plan.layout
    assert layout is not None
    rows = compile_rows(layout, None, ["{pid}", "{comm}.partition(b'\\0')[0]"])
    view, stride, _length = ring(layout, [{"pid": 5, "comm": b"sh"}, {"pid": 6, "comm": b"ls"}])
    out: list = []
    rows.write(view, HEADER, stride, 2, out.append, None)
    assert out == [(5, b"sh"), (6, b"ls")]
    assert "FMT" not in rows.source


@pytest.mark.parametrize("batch", [1, 7, 2048])
def test_run_sizes_do_not_change_the_counts(batch):
    w, layout = writer_for(TUTORIAL)
    records = [{"pid": i % 3, "comm": b"c", "fname": b"/f"} for i in range(3000)]
    for start in range(0, len(records), batch):
        feed(w, layout, records[start : start + batch])
    assert values(w) == {(str(p), "c", "/f"): 1000 for p in range(3)}


def test_label_cache_keeps_what_recurs_not_every_name():
    """A stream of names seen once stays out of the label cache (only a small
    young generation holds them); a label set seen in two runs is kept, and
    equal label texts are shared between series."""
    from pyeunomia.exporter import event_metrics as events

    plan = plan_of(config("""      counters:
        - name: c
          max_series: 100
          labels: [{name: comm}, {name: filename, from: fname}]
"""))
    m = EventMetric(plan.metrics[0], plan.layout)
    for i in range(3 * events.YOUNG_MAX):
        m.merge({(b"once", f"/tmp/name-{i}".encode()): 1}, 0.0)
    assert len(m._cache) == 0 and len(m._young) <= events.YOUNG_MAX
    assert len(m.store) == 100 and m.store.overflow.value == 3 * events.YOUNG_MAX - 100
    hot = (b"hot", b"/etc/hostname")
    m.merge({hot: 1}, 0.0)
    m.merge({hot: 1}, 0.0)
    assert hot in m._cache and m.store.overflow.value == 3 * events.YOUNG_MAX - 98
    texts = [labels[0] for labels in m.store.cells]
    assert all(t is texts[0] for t in texts)  # one "once" string for 100 series


def test_records_their_struct_does_not_fit_feed_no_metric():
    import io

    from pyeunomia.format.exports import record_check

    plan = plan_of(config(TUTORIAL))
    assert plan.layout is not None and plan.buffer is not None and plan.buffer.check is not None
    notes = io.StringIO()
    w = MetricsWriter(plan.layout, [EventMetric(m, plan.layout) for m in plan.metrics], threading.Lock(),
                      check=record_check("events", plan.layout, False, variable=lambda: False), program="snoop",
                      notes=notes)
    a = {"pid": 10, "comm": b"bash", "fname": b"/etc/passwd"}
    feed(w, plan.layout, [a, a], length=plan.layout.size + 8)  # 8 bytes too many: not this struct
    feed(w, plan.layout, [a])
    assert values(w) == {("10", "bash", "/etc/passwd"): 1}
    assert w.mismatched == 2
    size = plan.layout.size
    assert notes.getvalue().startswith(f"eunomia-exporter: program snoop: map 'events': a {size + 8}-byte record is "
                                       f"not struct event ({size} bytes): left out of the metrics")
