"""@histogram and @table checked against BTF (format/mapmeta.py): what a
good comment gives, and one line naming what is wrong in a bad one."""

from __future__ import annotations

from typing import Any

import pytest

from pyeunomia.format.btf import Btf
from pyeunomia.format.mapmeta import HISTOGRAM, TABLE, Column, map_view
from pyeunomia.format.mapshape import HistShape
from tests.btfbuilder import ENC_SIGNED, BtfBuilder

ENC_BOOL = 4


class Types:
    def __init__(self) -> None:
        b = BtfBuilder()
        u32 = b.int("unsigned int", 4)
        u64 = b.int("unsigned long long", 8)
        char = b.int("char", 1, ENC_SIGNED)
        comm = b.array(char, 16)
        self.u32, self.u64 = u32, u64
        self.counts = b.struct("fdcount", 64, [("counts", b.array(u32, 16), 0)])  # no name says "hist"
        self.hist = b.struct("hist", 104, [("slots", b.array(u32, 26), 0)])
        self.key = b.struct("hist_key", 20, [("pid", u32, 0), ("comm", comm, 32)])
        self.stat = b.struct("stat", 16, [("count", u64, 0), ("bytes", u64, 64)])
        self.plain = b.struct("plain", 8, [("count", u64, 0)])
        self.btf = Btf.parse(b.build())


T = Types()
BOOLS = {"targ_ms"}
KNOWN = {"errno": (), "static_map": ("map", "default")}  # decoders to check against, as ecc passes the registry's


def view(spec: dict[str, Any], key: int = 0, value: int = 0) -> Any:
    return map_view("m", spec, T.btf, key or T.u32, value or T.hist, BOOLS, KNOWN)


def test_no_comment_no_view():
    assert map_view("m", {"name": "m"}, T.btf, T.u32, T.hist, BOOLS) is None


def test_decoders_are_checked_only_against_what_the_caller_knows():
    spec = {HISTOGRAM: {"key": {"decoder": "dev"}}}
    assert map_view("m", spec, T.btf, T.u32, T.hist, BOOLS).key == (Column(None, "key", "dev"),)  # the runner's
    with pytest.raises(ValueError, match="unknown decoder 'dev' \\(known: errno, static_map\\)"):
        view(spec)


def test_histogram_keys():
    v = view({HISTOGRAM: {"unit": "usecs", "unit_option": {"targ_ms": "msecs"}, "clear": True,
                          "key": {"header": "disk", "decoder": "errno"}}})
    assert v.kind == HISTOGRAM and v.unit == "usecs" and v.unit_option == (("targ_ms", "msecs"),) and v.clear
    assert v.key == (Column(None, "disk", "errno"),) and v.shape == HistShape(False, "slots")


def test_histogram_makes_any_count_array_one_and_linear_is_chosen():
    assert view({HISTOGRAM: {"linear": True}}, value=T.counts).shape == HistShape(True, "counts")
    assert view({HISTOGRAM: True}, value=T.counts).shape == HistShape(False, "counts")


def test_struct_key_members_come_in_struct_order():
    v = view({HISTOGRAM: {"key": {"members": {"comm": {}, "pid": {"header": "PID"}}}}}, key=T.key)
    assert v.key == (Column("pid", "PID"), Column("comm", "comm"))


def test_table_keys():
    v = view({TABLE: {"key": {"header": "FD"}, "sort": "count", "top": 3, "clear": True,
                      "columns": {"bytes": {"header": "BYTES"}, "count": {"header": "N", "decoder": "errno"}}}},
             value=T.stat)
    assert (v.kind, v.sort, v.top, v.clear) == (TABLE, "count", 3, True)
    assert v.columns == (Column("count", "N", "errno"), Column("bytes", "BYTES"))  # struct order
    assert view({TABLE: {"sort": "value"}}, value=T.u64).sort == "value"


def test_when_names_bool_globals_one_or_a_list():
    v = view({TABLE: {"key": {"members": {"pid": {"when": "targ_ms"}, "comm": {}}},
                      "columns": {"bytes": {"when": ["targ_ms"]}, "count": {"when": "!targ_ms"}}}},
             key=T.key, value=T.stat)
    assert v.key == (Column("pid", "pid", when=("targ_ms",)), Column("comm", "comm"))
    assert v.columns == (Column("count", "count", when=("!targ_ms",)), Column("bytes", "bytes", when=("targ_ms",)))


@pytest.mark.parametrize(("spec", "key", "value", "says"), [
    ({HISTOGRAM: {}, TABLE: {}}, 0, 0, "map 'm' has both @histogram and @table: keep one"),
    ({HISTOGRAM: {"units": "us"}}, 0, 0, "@histogram of map 'm': unknown key 'units' (known: unit, unit_option,"),
    ({HISTOGRAM: {"unit": 3}}, 0, 0, "@histogram of map 'm': 'unit' must be a string"),
    ({HISTOGRAM: {"unit_option": {"targ_x": "ms"}}}, 0, 0, "unit_option 'targ_x' is not a bool global"),
    ({HISTOGRAM: {"linear": "yes"}}, 0, 0, "'linear' must be true or false"),
    ({HISTOGRAM: {}}, 0, "stat", "@histogram of map 'm': its value is neither an array of counts nor a struct"),
    ({HISTOGRAM: {"key": {"members": {"tid": {}}}}}, "key", 0,
     "@histogram of map 'm': key: 'tid' is not a member of the key (known: pid, comm)"),
    ({HISTOGRAM: {"key": {"members": {"pid": {}}}}}, 0, 0, "key: 'members' needs a struct key"),
    ({HISTOGRAM: {"key": {"header": "d", "decoder": "nosuch"}}}, 0, 0, "key: unknown decoder 'nosuch' (known: "),
    ({HISTOGRAM: {"key": {"decoder": {"name": "errno", "x": 1}}}}, 0, 0, "decoder 'errno' takes no parameter 'x'"),
    ({HISTOGRAM: {"key": {"decoder": 7}}}, 0, 0, 'key: a decoder is a name or {"name": ..., params}'),
    ({HISTOGRAM: {"key": {"title": "x"}}}, 0, 0, "key: unknown key 'title' (known: header, decoder, when, option)"),
    ({HISTOGRAM: {"key": {"when": "targ_x"}}}, 0, 0, "'when' 'targ_x' of 'key' is not a bool global of the program"),
    ({HISTOGRAM: {"key": {"when": "!targ_x"}}}, 0, 0, "'when' '!targ_x' of 'key' is not a bool global"),
    ({HISTOGRAM: {"key": {"when": []}}}, 0, 0, "key: 'when' must name a bool global, or be a list of them"),
    ({TABLE: {"columns": {"count": {"when": ["targ_ms", 3]}}}}, 0, "stat", "'when' must name a bool global"),
    ({HISTOGRAM: {"clear": 1}}, 0, 0, "'clear' must be true or false"),
    ({TABLE: {"sort": "cnt"}}, 0, "stat", "@table of map 'm': sort 'cnt' is not a member of the value "
                                          "(known: count, bytes)"),
    ({TABLE: {"sort": "count"}}, 0, "u64", "sort 'count' is not a member of the value (known: value)"),
    ({TABLE: {"top": 0}}, 0, "stat", "'top' must be a positive whole number of rows"),
    ({TABLE: {"top": True}}, 0, "stat", "'top' must be a positive whole number of rows"),
    ({TABLE: {"columns": {"nope": {}}}}, 0, "stat", "column 'nope' is not a member of the value"),
    ({TABLE: {"unit": "x"}}, 0, "stat", "@table of map 'm': unknown key 'unit'"),
    ({TABLE: "sorted"}, 0, "stat", "@table of map 'm' must be a JSON object"),
])
def test_bad_comments_say_what_is_wrong(spec: dict[str, Any], key: Any, value: Any, says: str):
    ids = {0: 0, "key": T.key, "stat": T.stat, "u64": T.u64}
    with pytest.raises(ValueError) as e:
        view(spec, key=ids[key], value=ids[value])
    assert says in str(e.value)
