"""pyeunomia.format.rows: compiled formatters give exact table and JSON lines."""

from __future__ import annotations

import json
import math
import struct

import pytest

from pyeunomia.format.btf import Btf
from pyeunomia.format.layout import Layout, struct_layout
from pyeunomia.format.rows import (
    column_width,
    compile_json_rows,
    compile_table_rows,
    json_text,
    run_struct,
    table_header,
)
from tests.btfbuilder import ENC_BOOL, ENC_SIGNED, BtfBuilder

PREFIX = b"12:34:56"


def event_layout() -> Layout:
    """struct event { u32 pid; s32 ret; u64 ts; char comm[8]; bool ok; enum state st; }: 32 bytes."""
    b = BtfBuilder()
    u32 = b.int("unsigned int", 4)
    s32 = b.int("int", 4, ENC_SIGNED)
    u64 = b.int("unsigned long long", 8)
    char = b.int("char", 1, ENC_SIGNED)
    bool_ = b.int("_Bool", 1, ENC_BOOL)
    state = b.enum("state", [("RUNNING", 0), ("SLEEPING", 1)])
    ev = b.struct("event", 32, [("pid", u32, 0), ("ret", s32, 32), ("ts", u64, 64), ("comm", b.array(char, 8), 128),
                                ("ok", bool_, 192), ("st", state, 224)])
    return struct_layout(Btf.parse(b.build()), ev)


def event(pid: int, ret: int, ts: int, comm: bytes, ok: int, st: int) -> bytes:
    return struct.pack("<IiQ8s?3xI", pid, ret, ts, comm, ok, st)


def raw_layout() -> Layout:
    """Bitfields and an anonymous union: members decoded from the record bytes."""
    b = BtfBuilder()
    u32 = b.int("unsigned int", 4)
    s32 = b.int("int", 4, ENC_SIGNED)
    u8 = b.int("unsigned char", 1)
    char = b.int("char", 1, ENC_SIGNED)
    mode = b.enum("mode", [("OFF", 0), ("ON", 1)])
    bool_ = b.int("_Bool", 1, ENC_BOOL)
    u = b.union("", 4, [("i", u32, 0), ("c", b.array(char, 4), 0)])
    s = b.struct("flags", 8, [("a", u32, 0, 3), ("b", s32, 3, 5), ("kind", u8, 8), ("m", mode, 16, 1),
                              ("on", bool_, 17, 1), ("", u, 32)])
    return struct_layout(Btf.parse(b.build()), s)


def rich_layout() -> Layout:
    """Members that take the slow path: floats, arrays, a nested struct, 128-bit ints, long double."""
    b = BtfBuilder()
    u16 = b.int("unsigned short", 2)
    f32 = b.float("float", 4)
    f64 = b.float("double", 8)
    s128 = b.int("__int128", 16, ENC_SIGNED)
    char = b.int("char", 1, ENC_SIGNED)
    point = b.struct("point", 4, [("x", u16, 0), ("name", b.array(char, 2), 16)])
    s = b.struct("rich", 56, [("f", f32, 0), ("d", f64, 64), ("arr", b.array(u16, 2), 128), ("pt", point, 160),
                              ("big", s128, 192), ("ld", b.float("long double", 16), 320)])
    return struct_layout(Btf.parse(b.build()), s)


def table(layout: Layout, records: list[bytes], escape: bool = False, header: int = 0, stride: int = 0,
          widths: list[int] | None = None) -> list[bytes]:
    stride = stride or header + layout.size
    buf = b"".join(b"\xaa" * header + r + b"\xbb" * (stride - header - len(r)) for r in records)
    out: list[bytes] = []
    rows = compile_table_rows(layout, widths or [column_width(f) for f in layout.fields], escape)
    rows.write(memoryview(buf), header, stride, len(records), out.append, PREFIX)
    return out


def json_rows(layout: Layout, records: list[bytes], header: int = 0, stride: int = 0) -> list[str]:
    stride = stride or header + layout.size
    buf = b"".join(b"\xaa" * header + r + b"\xbb" * (stride - header - len(r)) for r in records)
    out: list[str] = []
    compile_json_rows(layout).write(memoryview(buf), header, stride, len(records), out.append, None)
    return out


# -- table rows ----------------------------------------------------------------------------------


def test_column_widths():
    layout = event_layout()
    assert [column_width(f) for f in layout.fields] == [7, 7, 12, 7, 5, 8]
    assert [column_width(f) for f in raw_layout().fields] == [7, 7, 4, 3, 5, 7, 3]
    assert [column_width(f) for f in rich_layout().fields] == [8, 8, 8, 8, 12, 8]


def test_table_header():
    layout = event_layout()
    widths = [column_width(f) for f in layout.fields]
    assert table_header(layout, widths) == b"time     pid     ret     ts           comm    ok    st\n"
    assert table_header(layout, widths, time_width=4) == b"time pid     ret     ts           comm    ok    st\n"


def test_table_rows_of_a_plain_layout():
    layout = event_layout()
    records = [event(42, -1, 123456789, b"bash", 1, 1), event(0, 7, 0, b"a" * 8, 0, 0),
               event(4294967295, -(1 << 31), (1 << 64) - 1, b"x\0yz", 2, 9)]
    assert table(layout, records) == [
        b"12:34:56 42      -1      123456789    bash    true  SLEEPING\n",
        b"12:34:56 0       7       0            aaaaaaaa false RUNNING\n",
        b"12:34:56 4294967295 -2147483648 18446744073709551615 x       true  9\n",
    ]


def test_table_rows_inside_ring_buffer_slots():
    # a ring buffer record: an 8-byte header, then the record rounded up to 8
    layout = event_layout()
    records = [event(1, 0, 5, b"sh", 1, 0), event(2, 0, 6, b"ls", 0, 1)]
    assert table(layout, records, header=8, stride=8 + 32) == [
        b"12:34:56 1       0       5            sh      true  RUNNING\n",
        b"12:34:56 2       0       6            ls      false SLEEPING\n",
    ]
    assert table(layout, records, header=8, stride=8 + 40) == table(layout, records)


def test_table_fast_path_leaves_bytes_alone_and_safe_path_escapes():
    layout = event_layout()
    nasty = event(1, 0, 0, b"\x1b[2J\n\\\xff", 0, 0)
    assert table(layout, [nasty]) == [b"12:34:56 1       0       0            \x1b[2J\n\\\xff false RUNNING\n"]
    assert table(layout, [nasty], escape=True) == [
        b"12:34:56 1       0       0            \\x1b[2J\\n\\\\\\xff false RUNNING\n"]


def test_table_rows_decoded_from_raw_bytes():
    layout = raw_layout()
    assert layout.needs_raw
    rec = bytes([0xAD, 7, 0b11, 0]) + b"hi\0\0"
    assert table(layout, [rec]) == [b"12:34:56 5       -11     7    ON  true  26984   hi\n"]
    assert table(layout, [rec], header=8, stride=16) == table(layout, [rec])
    rec = bytes([0, 0, 0b10, 0]) + b"\x1b\n\0\0"
    assert table(layout, [rec], escape=True) == [b"12:34:56 0       0       0    OFF true  2587    \\x1b\\n\n"]


def test_table_rows_of_slow_path_members():
    layout = rich_layout()
    rec = (struct.pack("<f4xd", 0.5, -1e300) + struct.pack("<HH", 1, 65535) + struct.pack("<H2s", 9, b"ab")
           + (-2).to_bytes(16, "little", signed=True) + bytes(range(16)))
    assert table(layout, [rec]) == [
        b"12:34:56 0.5      -1e+300  [1,65535] {\"x\":9,\"name\":\"ab\"} -2           "
        b"\"b'\\\\x00\\\\x01\\\\x02\\\\x03\\\\x04\\\\x05\\\\x06\\\\x07\\\\x08\\\\t\\\\n\\\\x0b\\\\x0c\\\\r"
        b"\\\\x0e\\\\x0f'\"\n"]


def test_table_float_specials():
    layout = rich_layout()
    rec = struct.pack("<f4xd", math.nan, -math.inf) + bytes(40)
    assert table(layout, [rec])[0].startswith(b"12:34:56 nan      -inf     [0,0]")


def test_zero_records():
    assert table(event_layout(), []) == []
    assert json_rows(event_layout(), []) == []


def test_rows_source_is_kept():
    rows = compile_table_rows(event_layout(), [7, 7, 12, 7, 5, 8], escape=False)
    assert rows.source.startswith("def write(view, header, stride, count, append, prefix):\n")
    assert "pid" not in rows.source  # built from indexes, never from member names


def test_widths_must_match_the_fields():
    with pytest.raises(ValueError):
        compile_table_rows(event_layout(), [1, 2], escape=False)


# -- JSON rows -------------------------------------------------------------------------------------


def test_json_rows_of_a_plain_layout():
    lines = json_rows(event_layout(), [event(42, -1, 123456789, b"bash", 1, 1), event(1, 2, 3, b"x\0yz", 0, 9)],
                      header=8, stride=40)
    assert lines == [
        '{"pid":42,"ret":-1,"ts":123456789,"comm":"bash","ok":true,"st":"SLEEPING"}\n',
        '{"pid":1,"ret":2,"ts":3,"comm":"x","ok":false,"st":9}\n',
    ]
    assert json.loads(lines[0]) == {"pid": 42, "ret": -1, "ts": 123456789, "comm": "bash", "ok": True,
                                    "st": "SLEEPING"}


def test_json_rows_escape_unsafe_strings_and_stay_ascii():
    lines = json_rows(event_layout(), [event(1, 0, 0, b"\x1b[J\n\\\xff\xc3\xa9", 0, 0)])
    assert lines == ['{"pid":1,"ret":0,"ts":0,"comm":"\\u001b[J\\n\\\\\\\\xff\\u00e9","ok":false,"st":"RUNNING"}\n']
    assert lines[0].isascii()
    assert json.loads(lines[0])["comm"] == "\x1b[J\n\\\\xff\u00e9"


def test_json_rows_decoded_from_raw_bytes():
    layout = raw_layout()
    rec = bytes([0xAD, 7, 0b11, 0]) + b"hi\0\0"
    lines = json_rows(layout, [rec], header=8, stride=16)
    assert lines == ['{"a":5,"b":-11,"kind":7,"m":"ON","on":true,"i":26984,"c":"hi"}\n']
    rec = bytes([0, 0, 0, 0]) + b"\xff\n\0\0"
    lines = json_rows(layout, [rec])
    assert lines == ['{"a":0,"b":0,"kind":0,"m":"OFF","on":false,"i":2815,"c":"\\\\xff\\n"}\n']
    assert json.loads(lines[0])["c"] == "\\xff\n"


def test_json_rows_of_slow_path_members():
    layout = rich_layout()
    rec = (struct.pack("<f4xd", 0.5, math.nan) + struct.pack("<HH", 1, 2) + struct.pack("<H2s", 9, b"\xffb")
           + ((1 << 127) - 1).to_bytes(16, "little", signed=True) + bytes(16))
    lines = json_rows(layout, [rec])
    assert lines == ['{"f":0.5,"d":"nan","arr":[1,2],"pt":{"x":9,"name":"\\udcffb"},'
                     '"big":170141183460469231731687303715884105727,'
                     '"ld":"b\'\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00'
                     '\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\'"}\n']
    assert json.loads(lines[0])["big"] == (1 << 127) - 1


def test_json_keys_are_escaped():
    b = BtfBuilder()
    u8 = b.int("unsigned char", 1)
    s = b.struct("odd", 3, [("a\"%d\n", u8, 0), ("caf\u00e9", u8, 8), ("\\", u8, 16)])
    layout = struct_layout(Btf.parse(b.build()), s)
    lines = json_rows(layout, [b"\x01\x02\x03"])
    assert lines == ['{"a\\"%d\\n":1,"caf\\u00e9":2,"\\\\":3}\n']
    assert json.loads(lines[0]) == {"a\"%d\n": 1, "caf\u00e9": 2, "\\": 3}
    assert table_header(layout, [column_width(f) for f in layout.fields]) == (
        b"time     a\"%d\\n caf\xc3\xa9 \\\\\n")


# -- helpers ------------------------------------------------------------------------------------------


def test_run_struct():
    layout = event_layout()
    assert run_struct(layout, 8, 40).format == "<8xIiQ8s?3xI"
    assert run_struct(layout, 8, 48).format == "<8xIiQ8s?3xI8x"
    assert run_struct(layout, 0, 32).size == 32
    with pytest.raises(ValueError, match=r"^record slot smaller than the layout$"):
        run_struct(layout, 8, 39)


@pytest.mark.parametrize(("value", "text"), [
    (1, "1"), ("\u00e9\n", '"\\u00e9\\n"'), ([1, 2.5], "[1,2.5]"), ({"a": None}, '{"a":null}'),
    (math.nan, '"nan"'), (math.inf, '"inf"'), (-math.inf, '"-inf"'),
    ([1.0, math.nan, {"x": -math.inf}], '[1.0,"nan",{"x":"-inf"}]'),
    (b"\x00", "\"b'\\\\x00'\""), (True, "true"),
])
def test_json_text(value, text):
    assert json_text(value) == text
