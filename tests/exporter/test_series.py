"""The bounded series store: limit, overflow, refusals, expiry."""

from __future__ import annotations

import pytest

from pyeunomia.exporter.series import Cell, HistogramCell, SeriesStore


def test_beyond_the_limit_new_label_sets_go_to_overflow():
    store = SeriesStore(2, None, Cell)
    for labels in [("a",), ("b",), ("c",), ("a",), ("d",), ("c",)]:
        store.cell(labels, 1.0).value += 1
    assert {k: c.value for k, c in store.cells.items()} == {("a",): 2, ("b",): 1}
    assert store.overflow.value == 3 and store.overflow_used
    assert store.refused == 3 and len(store) == 2


def test_expiry_drops_quiet_series_and_makes_room():
    store = SeriesStore(2, 10.0, lambda: HistogramCell(3))
    store.cell(("old",), 0.0).buckets[0] += 1
    store.cell(("new",), 8.0).buckets[2] += 1
    assert store.expire(9.0) == 0
    assert store.expire(10.5) == 1 and list(store.cells) == [("new",)] and store.expired == 1
    assert store.cell(("third",), 11.0) is not store.overflow
    assert store.refused == 0


def test_no_expiry_without_expire_after():
    store = SeriesStore(5, None, Cell)
    store.cell(("x",), 0.0)
    assert store.expire(1e9) == 0 and len(store) == 1


def test_a_limit_below_one_is_a_bug():
    with pytest.raises(ValueError):
        SeriesStore(0, None, Cell)
