"""The table and JSON writers of a struct with @column members: only those
members, headers, widths, alignment, -e, -T, decoders memoised, NAME_text."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import pytest

from pyeunomia.decoders import DECODERS
from pyeunomia.decoders import columns as columns_module
from pyeunomia.decoders.columns import check_column, plan_columns
from pyeunomia.format.btf import Btf
from pyeunomia.format.layout import Layout, struct_layout
from pyeunomia.output import writers as events
from pyeunomia.output.writers import ColumnTableWriter, JsonWriter, event_writer
from tests.btfbuilder import ENC_SIGNED, BtfBuilder
from tests.output.test_writers import HEADER, FakeTime, Stream, ring


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(events, "time", FakeTime())


def conn_layout() -> Layout:
    """struct conn { char comm[8]; u32 pid; s32 err; u8 addr[16]; u16 af; u16 port; u32 sig; }: 40 bytes."""
    b = BtfBuilder()
    char = b.int("char", 1, ENC_SIGNED)
    u8 = b.int("unsigned char", 1)
    u16 = b.int("unsigned short", 2)
    u32 = b.int("unsigned int", 4)
    s32 = b.int("int", 4, ENC_SIGNED)
    ev = b.struct("conn", 40, [("comm", b.array(char, 8), 0), ("pid", u32, 64), ("err", s32, 96),
                               ("addr", b.array(u8, 16), 128), ("af", u16, 256), ("port", u16, 272),
                               ("sig", u32, 288)])
    return struct_layout(Btf.parse(b.build()), ev)


def rec(comm: bytes, pid: int, err: int, addr: bytes, af: int, port: int, sig: int) -> bytes:
    return struct.pack("<8sIi16sHHI", comm, pid, err, addr.ljust(16, b"\0"), af, port, sig)


COLUMNS: dict[str, Any] = {
    "comm": {"header": "COMM"},
    "pid": {"header": "PID", "width": 6},
    "err": {"header": "ERR", "width": 6, "left": True, "decoder": "errno"},
    "addr": {"header": "ADDR", "width": 9, "decoder": {"name": "inet", "family": "af"}},
    "port": {"header": "PORT", "decoder": {"name": "port", "network": True}},
    "sig": {"header": "SIG", "extended": True, "left": True, "decoder": "signal"},
}
RECORDS = [rec(b"curl", 42, -111, bytes([127, 0, 0, 1]), 2, 0x5000, 9),
           rec(b"ssh", 7, 0, bytes(15) + b"\x01", 10, 0x1600, 15)]


def test_only_columns_with_headers_widths_and_decoders(clock):
    stream = Stream()
    writer = ColumnTableWriter(conn_layout(), stream, COLUMNS)
    view, stride, length = ring(RECORDS)
    writer.write_run(view, HEADER, stride, 2, length)
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "COMM       PID ERR    ADDR      PORT",
        "curl        42 ECONNREFUSED 127.0.0.1   80",  # a text wider than its column pushes the rest right
        "ssh          7 ok     ::1         22",
    ]


def test_extended_and_timestamp(clock):
    stream = Stream()
    writer = event_writer(conn_layout(), stream, False, columns=COLUMNS, extended=True, timestamp=True)
    view, stride, length = ring(RECORDS[:1])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "TIME     COMM       PID ERR    ADDR      PORT SIG",
        "22:13:20 curl        42 ECONNREFUSED 127.0.0.1   80 SIGKILL",
    ]


def test_elapsed_after_the_time(clock):
    """--elapsed: libbpf-tools' TIME(s), seconds since the writer began (%-8.3f), after -T's time."""
    stream = Stream()
    writer = event_writer(conn_layout(), stream, False, columns=COLUMNS, timestamp=True, elapsed=True)
    view, stride, length = ring(RECORDS[:1])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "TIME     TIME(s)  COMM       PID ERR    ADDR      PORT",
        "22:13:20 1.500    curl        42 ECONNREFUSED 127.0.0.1   80",
    ]


def test_detailed_is_a_line_per_column_extended_ones_too():
    stream = Stream()
    writer = event_writer(conn_layout(), stream, False, columns=COLUMNS, detailed=True)
    view, stride, length = ring(RECORDS[:1])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    assert stream.getvalue().decode().split("\n") == [
        "COMM: curl", "PID:  42", "ERR:  ECONNREFUSED", "ADDR: 127.0.0.1", "PORT: 80", "SIG:  SIGKILL", "", ""]


def test_json_has_raw_members_and_text_keys():
    stream = Stream()
    writer = JsonWriter(conn_layout(), stream, columns=COLUMNS)
    view, stride, length = ring(RECORDS[:1])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    doc = json.loads(stream.getvalue())
    assert doc == {"comm": "curl", "pid": 42, "err": -111, "addr": [127, 0, 0, 1] + [0] * 12, "af": 2,
                   "port": 0x5000, "sig": 9, "err_text": "ECONNREFUSED", "addr_text": "127.0.0.1",
                   "port_text": "80", "sig_text": "SIGKILL"}


def test_each_distinct_value_is_decoded_once(monkeypatch, clock):
    calls: list[Any] = []
    real = DECODERS["errno"]
    monkeypatch.setitem(DECODERS, "errno", real._replace(
        make=lambda params: lambda v: calls.append(v) or real.make(params)(v)))
    writer = ColumnTableWriter(conn_layout(), io.BytesIO(), {"err": {"decoder": "errno"}}, header=False)
    many = [rec(b"a", 1, -2, b"", 0, 0, 0), rec(b"b", 2, -13, b"", 0, 0, 0)] * 50
    view, stride, length = ring(many)
    writer.write_run(view, HEADER, stride, len(many), length)
    assert calls == [-2, -13]
    monkeypatch.setattr(columns_module, "MEMO_LIMIT", 1)  # a full memo starts afresh
    writer = ColumnTableWriter(conn_layout(), io.BytesIO(), {"err": {"decoder": "errno"}}, header=False)
    calls.clear()
    writer.write_run(view, HEADER, stride, 4, length)
    assert calls == [-2, -13, -2, -13]


def test_bad_columns_are_refused():
    layout = conn_layout()
    with pytest.raises(ValueError, match="unknown decoder 'nope'"):
        plan_columns(layout, {"pid": {"decoder": "nope"}})
    with pytest.raises(ValueError, match="decoder inet: 'fam' is not another member"):
        plan_columns(layout, {"addr": {"decoder": {"name": "inet", "family": "fam"}}})
    with pytest.raises(ValueError, match="decoder duration has no parameter 'units'"):
        plan_columns(layout, {"pid": {"decoder": {"name": "duration", "units": "ns"}}})
    with pytest.raises(ValueError, match="unit: expected one of"):
        plan_columns(layout, {"pid": {"decoder": {"name": "duration", "unit": "h"}}})
    with pytest.raises(ValueError, match="member 'nosuch'"):
        plan_columns(layout, {"nosuch": {}})
    with pytest.raises(ValueError, match="decoder signal takes int values, and comm holds str values"):
        plan_columns(layout, {"comm": {"decoder": "signal"}})
    with pytest.raises(ValueError, match="'width' must be from 1 to 256"):
        check_column({"width": 0}, ["pid"], "pid")
    with pytest.raises(ValueError, match="no key 'colour'"):
        check_column({"colour": "red"}, ["pid"], "pid")
    assert check_column(True, ["pid"], "pid") == {}


def test_a_packages_bad_column_is_a_package_error():
    from pyeunomia.errors import PackageError

    with pytest.raises(PackageError, match="struct conn: unknown decoder 'nope'"):
        event_writer(conn_layout(), io.BytesIO(), False, columns={"pid": {"decoder": "nope"}})
    with pytest.raises(PackageError, match="struct conn: a column names member 'gone'"):
        event_writer(conn_layout(), io.BytesIO(), True, columns={"gone": {}})


def test_a_text_member_decoded_and_labelled_lines(clock):
    stream = Stream()
    specs = {"comm": {"header": "WHO", "decoder": {"name": "static_map", "map": {"curl": "web"}, "default": "-"}},
             "pid": {}}
    writer = event_writer(conn_layout(), stream, False, columns=specs, label=b"events ")
    view, stride, length = ring(RECORDS)
    writer.write_run(view, HEADER, stride, 2, length)
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "events WHO    pid",  # a decoded column is as wide as its header unless it says "width"
        "events web     42",
        "events -        7",
    ]


def small_layout() -> Layout:
    """struct small { char comm[8]; s32 err; }: 12 bytes, every member fit for the fast JSON rows."""
    b = BtfBuilder()
    char = b.int("char", 1, ENC_SIGNED)
    s32 = b.int("int", 4, ENC_SIGNED)
    small = b.struct("small", 12, [("comm", b.array(char, 8), 0), ("err", s32, 64)])
    return struct_layout(Btf.parse(b.build()), small)


def test_json_text_keys_on_the_fast_rows_and_the_careful_fallback():
    specs = {"err": {"decoder": "errno"},
             "comm": {"decoder": {"name": "static_map", "map": {"q": 'say "hi"', "u": "caf\u00e9"}}}}
    stream = Stream()
    writer = JsonWriter(small_layout(), stream, columns=specs)
    assert writer._quotes is not None  # the fast rows, checked per batch
    plain = [struct.pack("<8si", b"ls", -2), struct.pack("<8si", b"cat", 0)]
    view, stride, length = ring(plain)
    writer.write_run(view, HEADER, stride, 2, length)
    writer.end_batch()
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [
        {"comm": "ls", "err": -2, "comm_text": "ls", "err_text": "ENOENT"},
        {"comm": "cat", "err": 0, "comm_text": "cat", "err_text": "ok"}]
    stream = Stream()
    writer = JsonWriter(small_layout(), stream, columns=specs)
    odd = [struct.pack("<8si", b"q", 13), struct.pack("<8si", b"u", 1)]
    view, stride, length = ring(odd)
    writer.write_run(view, HEADER, stride, 2, length)
    writer.end_batch()
    data = stream.getvalue()
    assert data.isascii()
    assert [json.loads(line) for line in data.splitlines()] == [
        {"comm": "q", "err": 13, "comm_text": 'say "hi"', "err_text": "EACCES"},
        {"comm": "u", "err": 1, "comm_text": "caf\u00e9", "err_text": "EPERM"}]


def test_a_column_with_when_shows_only_when_one_of_its_globals_is_set():
    layout = conn_layout()
    specs = {"pid": {}, "err": {"when": ["targ_lat", "targ_all"]}, "comm": {"when": "targ_comm"}}
    names = [c.member for c in plan_columns(layout, specs, options={"targ_lat": False, "targ_comm": True})]
    assert names == [n for n in ("comm", "pid") if n in names] and set(names) == {"pid", "comm"}
    assert {c.member for c in plan_columns(layout, specs, options={"targ_all": True})} == {"pid", "err"}
    assert {c.member for c in plan_columns(layout, specs)} == {"pid", "err", "comm"}  # -j: every column
    unless = {"pid": {}, "err": {"when": "!targ_count"}}
    assert [c.member for c in plan_columns(layout, unless, options={"targ_count": True})] == ["pid"]
    assert {c.member for c in plan_columns(layout, unless, options={})} == {"pid", "err"}
    with pytest.raises(ValueError, match="'when' must be a bool global's name or a list of them"):
        check_column({"when": [1]}, ["pid"], "pid")
    with pytest.raises(ValueError, match="'when' must be a bool global's name or a list of them"):
        check_column({"when": 3}, ["pid"], "pid")
