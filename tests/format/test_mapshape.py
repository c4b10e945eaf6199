"""Results in maps: numeric key order, per-CPU sums, ranking, and which BTF
types are histograms (libbpf-tools' shapes)."""

from __future__ import annotations

from pyeunomia.format.btf import Btf
from pyeunomia.format.mapshape import HistShape, hist_shape, sort_key, sum_per_cpu, weight
from tests.btfbuilder import ENC_SIGNED, BtfBuilder


def test_keys_sort_as_numbers():
    assert sorted([15, 14157, 1, 11], key=sort_key) == [1, 11, 15, 14157]
    assert sorted(["15", "14157", "1", "11"], key=sort_key) == ["1", "11", "14157", "15"]  # strings stay strings
    assert sorted([-1, 3, 2.5], key=sort_key) == [-1, 2.5, 3]
    assert sorted(["b", 2, "a", 10], key=sort_key) == [2, 10, "a", "b"]  # numbers first


def test_struct_keys_sort_member_by_member():
    keys = [{"pid": 15, "comm": "b"}, {"pid": 14157, "comm": "a"}, {"pid": 15, "comm": "a"}, {"pid": 1, "comm": "z"}]
    assert sorted(keys, key=sort_key) == [{"pid": 1, "comm": "z"}, {"pid": 15, "comm": "a"},
                                          {"pid": 15, "comm": "b"}, {"pid": 14157, "comm": "a"}]
    assert sorted([[2, 1], [10, 0]], key=sort_key) == [[2, 1], [10, 0]]


def test_per_cpu_values_add_up():
    assert sum_per_cpu([3, 4, 0]) == 7
    assert sum_per_cpu([[1, 2], [3, 4]]) == [4, 6]
    assert sum_per_cpu([{"n": 1, "comm": "a", "slots": [1, 0]}, {"n": 2, "comm": "", "slots": [0, 5]}]) == \
        {"n": 3, "comm": "a", "slots": [1, 5]}
    assert sum_per_cpu(["x", "y"]) == ["x", "y"]  # nothing to add: each CPU's


def test_weight_ranks_by_what_an_entry_counts():
    assert weight(7, None) == 7
    assert weight({"comm": "x", "count": 5, "bytes": 100}, None) == 5  # the first number
    assert weight({"slots": [1, 2, 3], "comm": "x"}, HistShape(False, "slots")) == 6
    assert weight([4, 4], HistShape(False, None)) == 8
    assert weight("text", None) == 0


def _types():  # type: ignore[no-untyped-def]
    b = BtfBuilder()
    u32 = b.int("unsigned int", 4)
    char = b.int("char", 1, ENC_SIGNED)
    slots = b.array(u32, 26)
    comm = b.array(char, 16)
    return b, u32, slots, comm


def test_libbpf_tools_hist_struct_is_a_log2_histogram():
    b, u32, slots, comm = _types()
    hist = b.struct("hist", 120, [("slots", slots, 0), ("comm", comm, 26 * 32)])
    info = b.struct("info", 112, [("count", u32, 0), ("slots", slots, 32)])
    plain = b.struct("data_t", 20, [("count", u32, 0), ("comm", comm, 32)])
    btf = Btf.parse(b.build())
    assert hist_shape(btf, hist, "hists") == HistShape(False, "slots")
    assert hist_shape(btf, info, "infos") == HistShape(False, "slots")
    assert hist_shape(btf, plain, "data") is None
    assert hist_shape(btf, hist, "lhists") == HistShape(True, "slots")  # a name that says linear
    assert hist_shape(btf, 0, "hists") is None


def test_integer_arrays_are_histograms_only_when_named_so():
    b, _u32, slots, comm = _types()
    per_cpu = b.struct("hist", 104, [("slots", slots, 0)])
    hists = b.array(per_cpu, 4)
    btf = Btf.parse(b.build())
    assert hist_shape(btf, slots, "hist") == HistShape(False, None)  # funclatency's __u32 hist[MAX_SLOTS]
    assert hist_shape(btf, slots, "bytes_linear_hist") == HistShape(True, None)
    assert hist_shape(btf, slots, "fd_writes") is None  # an array of counters
    assert hist_shape(btf, comm, "hist") is None  # a string
    assert hist_shape(btf, hists, "hists") == HistShape(False, "slots", indexed=True)  # softirqs' hists[NR]
