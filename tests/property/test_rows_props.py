"""output.rows and output.events over hostile records: the regressions the
properties in test_layout_props found, written out."""

from __future__ import annotations

import io
import json

from pyeunomia.format.btf import Btf
from pyeunomia.format.layout import struct_layout
from pyeunomia.output.writers import JsonWriter
from tests.btfbuilder import ENC_SIGNED, BtfBuilder
from tests.fuzz.checks import check_layout, check_writers


def enum_and_text() -> BtfBuilder:
    b = BtfBuilder()
    mode = b.enum("mode", [("READ", 1), ("WRITE", 2)])
    char = b.int("char", 1, ENC_SIGNED)
    b.struct("event", 12, [("mode", mode, 0), ("comm", b.array(char, 8), 32)])
    return b  # the struct is type 4


def test_quotes_in_one_line_do_not_make_up_for_an_unknown_enum_in_another() -> None:
    """The fast JSON path checked the batch's total quote count: a line whose
    enum had no name (two quotes fewer) let a comm with two raw quotes through."""
    layout = struct_layout(Btf.parse(enum_and_text().build()), 4)
    unknown = (7).to_bytes(4, "little") + b"ab\0\0\0\0\0\0"
    quoted = (1).to_bytes(4, "little") + b'a""b\0\0\0\0'
    records = bytearray(unknown + quoted)
    out = io.BytesIO()
    writer = JsonWriter(layout, out)
    writer.write_run(memoryview(records), 0, 12, 2, 12)
    writer.end_batch()
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows == [{"mode": 7, "comm": "ab"}, {"mode": "READ", "comm": 'a""b'}]


def test_struct_without_members() -> None:
    b = BtfBuilder()
    b.struct("event", 0, [])
    check_layout(struct_layout(Btf.parse(b.build()), 1))


def test_members_named_like_positions() -> None:
    """A member named "_0" must not stand for the first member in generated rows."""
    b = BtfBuilder()
    i32 = b.int("int", 4, ENC_SIGNED)
    char = b.int("char", 1, ENC_SIGNED)
    event = b.struct("event", 12, [("name", b.array(char, 8), 0), ("_0", i32, 64)])
    layout = struct_layout(Btf.parse(b.build()), event)
    check_writers(layout, [b"abc\0\0\0\0\0" + (5).to_bytes(4, "little")])


def test_odd_sized_enum_and_bool() -> None:
    """An enum or _Bool of 3 bytes (BTF allows it) is neither a crash nor always true."""
    b = BtfBuilder()
    e3 = b.enum("e3", [("A", 1)], size=3)
    bool3 = b.int("_Bool", 3, 4)
    event = b.struct("event", 8, [("e", e3, 0), ("flag", bool3, 32)])
    layout = struct_layout(Btf.parse(b.build()), event)
    check_layout(layout)
    assert layout.decode(b"\x01\0\0\0\0\0\0\0") == {"e": "A", "flag": False}


def test_members_out_of_offset_order() -> None:
    """Found by fuzz_package: rows named unpacked values in member order but
    unpacked them in offset order, so two members swapped values."""
    b = BtfBuilder()
    i32 = b.int("int", 4, ENC_SIGNED)
    event = b.struct("event", 8, [("late", i32, 32), ("early", i32, 0)])
    layout = struct_layout(Btf.parse(b.build()), event)
    record = (1).to_bytes(4, "little") + (2).to_bytes(4, "little")
    assert layout.decode(record) == {"late": 2, "early": 1}
    out = io.BytesIO()
    writer = JsonWriter(layout, out)
    writer.write_run(memoryview(bytearray(record)), 0, 8, 1, 8)
    writer.end_batch()
    assert json.loads(out.getvalue()) == {"late": 2, "early": 1}
    check_writers(layout, [record])
