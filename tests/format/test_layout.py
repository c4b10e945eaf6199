"""pyeunomia.format.layout: records decoded byte by byte, for every kind of member."""

from __future__ import annotations

import base64
import json
import math
import struct
import zlib
from pathlib import Path

import pytest

from pyeunomia.format.btf import Btf, BTFError
from pyeunomia.format.layout import Field, FieldKind, cut_string, struct_layout, value_decoder
from pyeunomia.format.objspec import ObjectSpec
from tests.btfbuilder import ENC_BOOL, ENC_CHAR, ENC_SIGNED, BtfBuilder

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


class Types:
    """Common base types, added first to a builder."""

    def __init__(self, b: BtfBuilder):
        self.s8 = b.int("signed char", 1, ENC_SIGNED)
        self.u8 = b.int("unsigned char", 1)
        self.s16 = b.int("short", 2, ENC_SIGNED)
        self.u16 = b.int("unsigned short", 2)
        self.s32 = b.int("int", 4, ENC_SIGNED)
        self.u32 = b.int("unsigned int", 4)
        self.s64 = b.int("long long", 8, ENC_SIGNED)
        self.u64 = b.int("unsigned long long", 8)
        self.s128 = b.int("__int128", 16, ENC_SIGNED)
        self.u128 = b.int("unsigned __int128", 16)
        self.bool = b.int("_Bool", 1, ENC_BOOL)
        self.char = b.int("char", 1, ENC_SIGNED)
        self.float = b.float("float", 4)
        self.double = b.float("double", 8)


def layout_of(build, endian: str = "<"):  # type: ignore[no-untyped-def]
    b = BtfBuilder(endian)
    t = Types(b)
    type_id = build(b, t)
    return struct_layout(Btf.parse(b.build()), type_id)


# -- integers -------------------------------------------------------------------------

INTS = [("s8", 0), ("u8", 1), ("s16", 2), ("u16", 4), ("s32", 8), ("u32", 12), ("s64", 16), ("u64", 24)]
PAD = "eeee"  # bytes 6 and 7: padding, any value


def ints_struct(b, t):  # type: ignore[no-untyped-def]
    return b.struct("ints", 32, [(n, getattr(t, n), off * 8) for n, off in INTS])


def test_integers_at_their_limits_little_endian():
    layout = layout_of(ints_struct)
    low = bytes.fromhex("80" "00" "0080" "0000" + PAD + "00000080" "00000000" "0000000000000080" "0000000000000000")
    high = bytes.fromhex("7f" "ff" "ff7f" "ffff" + PAD + "ffffff7f" "ffffffff" "ffffffffffffff7f" "ffffffffffffffff")
    minus_one = bytes.fromhex("ff" "00" "ffff" "0000" + PAD + "ffffffff" "00000000"
                              "ffffffffffffffff" "0000000000000000")
    assert layout.decode(low) == {"s8": -128, "u8": 0, "s16": -32768, "u16": 0, "s32": -(1 << 31), "u32": 0,
                                  "s64": -(1 << 63), "u64": 0}
    assert layout.decode(high) == {"s8": 127, "u8": 255, "s16": 32767, "u16": 65535, "s32": (1 << 31) - 1,
                                   "u32": (1 << 32) - 1, "s64": (1 << 63) - 1, "u64": (1 << 64) - 1}
    assert layout.decode(minus_one) == {"s8": -1, "u8": 0, "s16": -1, "u16": 0, "s32": -1, "u32": 0,
                                        "s64": -1, "u64": 0}


def test_integers_big_endian():
    layout = layout_of(ints_struct, ">")
    raw = bytes.fromhex("fe" "02" "fffd" "0104" + PAD + "fffffffb" "01020304" "fffffffffffffff9" "0102030405060708")
    assert layout.decode(raw) == {"s8": -2, "u8": 2, "s16": -3, "u16": 0x0104, "s32": -5, "u32": 0x01020304,
                                  "s64": -7, "u64": 0x0102030405060708}
    assert layout.struct.format == ">bBhH2xiIqQ"


def test_integer_fields_metadata():
    layout = layout_of(ints_struct)
    assert layout.name == "ints"
    assert layout.size == 32
    assert layout.struct.format == "<bBhH2xiIqQ"
    assert layout.needs_raw is False
    assert [(f.name, f.type_name, f.kind, f.offset, f.size, f.signed, f.index) for f in layout.fields] == [
        ("s8", "signed char", FieldKind.INT, 0, 1, True, 0),
        ("u8", "unsigned char", FieldKind.INT, 1, 1, False, 1),
        ("s16", "short", FieldKind.INT, 2, 2, True, 2),
        ("u16", "unsigned short", FieldKind.INT, 4, 2, False, 3),
        ("s32", "int", FieldKind.INT, 8, 4, True, 4),
        ("u32", "unsigned int", FieldKind.INT, 12, 4, False, 5),
        ("s64", "long long", FieldKind.INT, 16, 8, True, 6),
        ("u64", "unsigned long long", FieldKind.INT, 24, 8, False, 7),
    ]
    assert all(f.convert is None for f in layout.fields)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_128_bit_integers(endian):
    layout = layout_of(lambda b, t: b.struct("wide", 32, [("s", t.s128, 0), ("u", t.u128, 128)]), endian)
    order = "little" if endian == "<" else "big"
    values = [(-(1 << 127), (1 << 128) - 1), (-1, 0), ((1 << 127) - 1, 1 << 100), (-12345678901234567890123, 7)]
    for s, u in values:
        raw = s.to_bytes(16, order, signed=True) + u.to_bytes(16, order)
        assert layout.decode(raw) == {"s": s, "u": u}
    assert layout.struct.format == endian + "16s16s"
    assert [(f.kind, f.signed) for f in layout.fields] == [(FieldKind.INT, True), (FieldKind.INT, False)]


def test_bool():
    layout = layout_of(lambda b, t: b.struct("flags", 3, [("a", t.bool, 0), ("b", t.bool, 8), ("c", t.bool, 16)]))
    assert layout.decode(b"\x00\x01\x02") == {"a": False, "b": True, "c": True}
    assert layout.fields[0].kind == FieldKind.BOOL
    assert layout.struct.format == "<???"


def test_wide_bool():
    layout = layout_of(lambda b, t: b.struct("w", 4, [("ok", b.int("bool32", 4, ENC_BOOL), 0)]))
    assert layout.decode(b"\x00\x00\x00\x00") == {"ok": False}
    assert layout.decode(b"\x00\x01\x00\x00") == {"ok": True}
    assert layout.fields[0].kind == FieldKind.BOOL


# -- char arrays -----------------------------------------------------------------------


def comm_layout(endian: str = "<"):  # type: ignore[no-untyped-def]
    return layout_of(lambda b, t: b.struct("task", 20, [("pid", t.u32, 0), ("comm", b.array(t.char, 16), 32)]),
                     endian)


@pytest.mark.parametrize(("comm", "text"), [
    (b"bash" + bytes(12), "bash"),
    (b"bash\0garbage\xff\xfe\0\0", "bash"),                       # stops at the first NUL
    (b"0123456789abcdef", "0123456789abcdef"),                    # no NUL at all: all 16
    (bytes(16), ""),
    (b"\0bash" + bytes(11), ""),
    (b"caf\xc3\xa9" + bytes(11), "caf\u00e9"),                    # UTF-8
    (b"a\xffb\xc3" + bytes(12), "a\udcffb\udcc3"),                # invalid UTF-8 kept as surrogates
    (b"\x1b[31m\n" + bytes(10), "\x1b[31m\n"),                    # control bytes untouched here
])
def test_char_array(comm, text):
    layout = comm_layout()
    assert layout.decode(b"\x07\x00\x00\x00" + comm) == {"pid": 7, "comm": text}


def test_char_array_metadata_and_lossless_bytes():
    layout = comm_layout()
    f = layout.field("comm")
    assert (f.kind, f.type_name, f.offset, f.size, f.index) == (FieldKind.CHARS, "char[16]", 4, 16, 1)
    text = layout.decode(b"\0\0\0\0" + b"\xff\xfe\x80abc" + bytes(10))["comm"]
    assert text.encode("utf-8", "surrogateescape") == b"\xff\xfe\x80abc"


def test_cut_string():
    assert cut_string(b"abc\0def") == "abc"
    assert cut_string(b"") == ""
    assert cut_string(b"\xe2\x82") == "\udce2\udc82"


def test_const_char_array_is_a_string():
    layout = layout_of(lambda b, t: b.struct("s", 4, [("name", b.array(b.const(t.char), 4), 0)]))
    assert layout.decode(b"ab\0c") == {"name": "ab"}
    assert layout.fields[0].kind == FieldKind.CHARS


def test_char_type_with_char_encoding_only_by_name():
    # pahole marks char with BTF_INT_CHAR; only the name "char" makes a string
    def build(b, t):  # type: ignore[no-untyped-def]
        pchar = b.int("char", 1, ENC_CHAR)
        return b.struct("s", 8, [("a", b.array(pchar, 4), 0), ("b", b.array(t.u8, 4), 32)])
    assert layout_of(build).decode(b"hi\0\0hi\0\0") == {"a": "hi", "b": [104, 105, 0, 0]}


# -- arrays ------------------------------------------------------------------------------


def test_arrays_of_integers():
    def build(b, t):  # type: ignore[no-untyped-def]
        return b.struct("arrs", 24, [("u32s", b.array(t.u32, 3), 0), ("s16s", b.array(t.s16, 4), 96),
                                     ("bytes", b.array(t.u8, 4), 160)])
    raw = bytes.fromhex("01000000" "ffffffff" "00000080" "ffff" "0080" "ff7f" "0100" "00ff7f80")
    assert layout_of(build).decode(raw) == {"u32s": [1, 0xFFFFFFFF, 0x80000000], "s16s": [-1, -32768, 32767, 1],
                                            "bytes": [0, 255, 127, 128]}


def test_array_of_u32_big_endian():
    layout = layout_of(lambda b, t: b.struct("h", 8, [("slots", b.array(t.u32, 2), 0)]), ">")
    assert layout.decode(bytes.fromhex("00000001" "01000000")) == {"slots": [1, 1 << 24]}


def test_multi_dimensional_arrays():
    def build(b, t):  # type: ignore[no-untyped-def]
        grid = b.array(b.array(t.s16, 3), 2)             # short[2][3]
        names = b.array(b.array(t.char, 4), 2)           # char[2][4]
        cube = b.array(b.array(b.array(t.u8, 2), 2), 2)  # unsigned char[2][2][2]
        return b.struct("m", 28, [("grid", grid, 0), ("names", names, 96), ("cube", cube, 160)])
    raw = (struct.pack("<6h", 1, -2, 3, -4, 5, -6) + b"ab\0x" + b"cdef" + bytes(range(8)))
    layout = layout_of(build)
    assert layout.decode(raw) == {"grid": [[1, -2, 3], [-4, 5, -6]], "names": ["ab", "cdef"],
                                  "cube": [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]}
    assert [f.type_name for f in layout.fields] == ["short[2][3]", "char[2][4]", "unsigned char[2][2][2]"]
    assert [f.kind for f in layout.fields] == [FieldKind.ARRAY, FieldKind.ARRAY, FieldKind.ARRAY]


def test_arrays_of_other_kinds():
    def build(b, t):  # type: ignore[no-untyped-def]
        color = b.enum("color", [("RED", 0), ("GREEN", 1)])
        pair = b.struct("pair", 2, [("x", t.u8, 0), ("y", t.s8, 8)])
        return b.struct("many", 72, [
            ("flags", b.array(t.bool, 3), 0),                # 0..3
            ("colors", b.array(color, 2), 32),               # 4..12
            ("ratios", b.array(t.float, 2), 96),             # 12..20
            ("ptrs", b.array(b.ptr(t.char), 2), 160),        # 20..36 (unaligned is fine)
            ("wide", b.array(t.s128, 2), 288),               # 36..68
            ("pairs", b.array(pair, 2), 544),                # 68..72
        ])
    raw = (b"\x01\x00\x05\x00" + struct.pack("<II", 1, 9) + struct.pack("<ff", 0.5, -2.0)
           + struct.pack("<QQ", 0xFFFF888800001000, 0) + (-2).to_bytes(16, "little", signed=True)
           + (3).to_bytes(16, "little") + b"\x01\xff\x02\x7f")
    assert layout_of(build).decode(raw) == {
        "flags": [True, False, True], "colors": ["GREEN", 9], "ratios": [0.5, -2.0],
        "ptrs": [0xFFFF888800001000, 0], "wide": [-2, 3], "pairs": [{"x": 1, "y": -1}, {"x": 2, "y": 127}]}


def test_empty_trailing_array():
    layout = layout_of(lambda b, t: b.struct("msg", 4, [("len", t.u32, 0), ("data", b.array(t.u8, 0), 32)]))
    assert layout.decode(b"\x03\0\0\0") == {"len": 3, "data": []}
    assert (layout.field("data").offset, layout.field("data").size) == (4, 0)


# -- structs and unions ----------------------------------------------------------------------


def test_nested_struct():
    def build(b, t):  # type: ignore[no-untyped-def]
        inner = b.struct("point", 8, [("x", t.s32, 0), ("y", t.s32, 32)])
        return b.struct("seg", 20, [("id", t.u32, 0), ("a", inner, 32), ("b", b.typedef("point_t", inner), 96)])
    layout = layout_of(build)
    raw = struct.pack("<Iiiii", 9, 1, -1, 2, -2)
    assert layout.decode(raw) == {"id": 9, "a": {"x": 1, "y": -1}, "b": {"x": 2, "y": -2}}
    assert [(f.name, f.kind, f.type_name) for f in layout.fields] == [
        ("id", FieldKind.INT, "unsigned int"), ("a", FieldKind.STRUCT, "struct point"),
        ("b", FieldKind.STRUCT, "point_t")]


def test_anonymous_struct_and_union_members_are_spliced_in():
    def build(b, t):  # type: ignore[no-untyped-def]
        anon_struct = b.struct("", 8, [("lo", t.u32, 0), ("hi", t.u32, 32)])
        anon_union = b.union("", 8, [("as_u64", t.u64, 0), ("as_s32", t.s32, 0), ("", anon_struct, 0)])
        return b.struct("reg", 16, [("tag", t.u16, 0), ("", anon_union, 64)])
    layout = layout_of(build)
    raw = b"\x05\x00" + bytes(6) + struct.pack("<Q", 0xFFFFFFFF00000002)
    assert layout.decode(raw) == {"tag": 5, "as_u64": 0xFFFFFFFF00000002, "as_s32": 2,
                                  "lo": 2, "hi": 0xFFFFFFFF}
    assert [(f.name, f.offset, f.index is None) for f in layout.fields] == [
        ("tag", 0, False), ("as_u64", 8, False), ("as_s32", 8, True), ("lo", 8, True), ("hi", 12, True)]
    assert layout.needs_raw is True


def test_named_union_member_decodes_every_alternative():
    def build(b, t):  # type: ignore[no-untyped-def]
        u = b.union("val", 8, [("i", t.s64, 0), ("d", t.double, 0), ("c", b.array(t.char, 8), 0)])
        return b.struct("box", 8, [("v", u, 0)])
    raw = b"ok\0\0\0\0\xf0\x3f"
    assert layout_of(build).decode(raw) == {"v": {"i": 0x3FF0000000006B6F, "d": 1.000000000006107, "c": "ok"}}
    raw = b"\xff\xff\xff\xff\xff\xff\xff\xff"
    decoded = layout_of(build).decode(raw)["v"]
    assert (decoded["i"], decoded["c"]) == (-1, "\udcff" * 8)
    assert math.isnan(decoded["d"])


def test_top_level_union():
    def build(b, t):  # type: ignore[no-untyped-def]
        return b.union("u", 4, [("f", t.float, 0), ("bits", t.u32, 0), ("b0", t.u8, 0)])
    layout = layout_of(build)
    assert layout.decode(struct.pack("<f", -2.0)) == {"f": -2.0, "bits": 0xC0000000, "b0": 0}
    assert layout.struct.format == "<f"


def test_padding_is_skipped_and_ignored():
    def build(b, t):  # type: ignore[no-untyped-def]
        return b.struct("padded", 24, [("a", t.u8, 0), ("b", t.u32, 32), ("c", t.u8, 64), ("d", t.u64, 128)])
    layout = layout_of(build)
    assert layout.struct.format == "<B3xIB7xQ"
    assert layout.struct.size == 24
    raw = b"\x01\xaa\xbb\xcc" + b"\x02\0\0\0" + b"\x03" + b"\xee" * 7 + b"\x04" + bytes(7)
    assert layout.decode(raw) == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_trailing_padding():
    layout = layout_of(lambda b, t: b.struct("t", 16, [("a", t.u64, 0), ("b", t.u8, 64)]))
    assert layout.struct.format == "<QB7x"
    assert layout.decode(bytes(range(16))) == {"a": 0x0706050403020100, "b": 8}


def test_members_declared_out_of_offset_order():
    layout = layout_of(lambda b, t: b.struct("r", 8, [("second", t.u32, 32), ("first", t.u32, 0)]))
    assert layout.decode(struct.pack("<II", 1, 2)) == {"second": 2, "first": 1}
    assert list(layout.decode(struct.pack("<II", 1, 2))) == ["second", "first"]


# -- enums -------------------------------------------------------------------------------


def test_enums_by_name_and_unknown_values_as_int():
    def build(b, t):  # type: ignore[no-untyped-def]
        state = b.enum("state", [("IDLE", 0), ("BUSY", 1), ("HIGH", 0xFFFFFFFF)])
        sign = b.enum("sign", [("NEG", -1), ("ZERO", 0)], size=1, signed=True)
        big = b.enum64("big", [("TOP", 1 << 63)])
        sbig = b.enum64("sbig", [("LOW", -(1 << 40))], signed=True)
        return b.struct("e", 24, [("st", state, 0), ("sg", sign, 32), ("bg", big, 64), ("sb", sbig, 128)])
    layout = layout_of(build)
    raw = struct.pack("<IbxxxQq", 1, -1, 1 << 63, -(1 << 40))
    assert layout.decode(raw) == {"st": "BUSY", "sg": "NEG", "bg": "TOP", "sb": "LOW"}
    raw = struct.pack("<IbxxxQq", 0xFFFFFFFF, 5, 2, -2)
    assert layout.decode(raw) == {"st": "HIGH", "sg": 5, "bg": 2, "sb": -2}
    raw = struct.pack("<IbxxxQq", 7, -7, 0, 0)
    assert layout.decode(raw) == {"st": 7, "sg": -7, "bg": 0, "sb": 0}
    fields = {f.name: f for f in layout.fields}
    assert fields["st"].enum_names == {0: "IDLE", 1: "BUSY", 0xFFFFFFFF: "HIGH"}
    assert (fields["st"].kind, fields["st"].signed, fields["st"].type_name) == (FieldKind.ENUM, False, "enum state")
    assert (fields["sg"].signed, fields["sb"].signed, fields["bg"].signed) == (True, True, False)


def test_enum_big_endian():
    layout = layout_of(lambda b, t: b.struct("e", 2, [("x", b.enum("e", [("A", -2)], size=2, signed=True), 0)]),
                       ">")
    assert layout.decode(b"\xff\xfe") == {"x": "A"}
    assert layout.decode(b"\x00\x01") == {"x": 1}


# -- bitfields -------------------------------------------------------------------------------
#
# Ground truth from clang: struct bf { unsigned a:3; int b:5; int c:4; enum color col:2;
# _Bool flag:1; unsigned long long big:40; short s; } g = {5, -11, 6, BLUE, 1, 0x12345678ab, -2};
# compiled with -target bpfel and -target bpfeb; .data holds the bytes below and the BTF
# says the bit offsets below (bpftool btf dump).
CLANG_BPFEL = bytes.fromhex("adf6553c2b1a0900feff000000000000")
CLANG_BPFEB = bytes.fromhex("b56e2468acf15600fffe000000000000")


def clang_bitfields(b, t):  # type: ignore[no-untyped-def]
    color = b.enum("color", [("RED", 1), ("GREEN", 2), ("BLUE", 3)])
    return b.struct("bf", 16, [("a", t.u32, 0, 3), ("b", t.s32, 3, 5), ("c", t.s32, 8, 4), ("col", color, 12, 2),
                               ("flag", t.bool, 14, 1), ("big", t.u64, 15, 40), ("s", t.s16, 64)])


@pytest.mark.parametrize(("endian", "raw"), [("<", CLANG_BPFEL), (">", CLANG_BPFEB)])
def test_bitfields_as_clang_lays_them_out(endian, raw):
    layout = layout_of(clang_bitfields, endian)
    assert layout.decode(raw) == {"a": 5, "b": -11, "c": 6, "col": "BLUE", "flag": True, "big": 0x12345678AB,
                                  "s": -2}
    assert [(f.name, f.offset, f.bit_offset, f.bit_size, f.index) for f in layout.fields] == [
        ("a", 0, 0, 3, None), ("b", 0, 3, 5, None), ("c", 1, 8, 4, None), ("col", 1, 12, 2, None),
        ("flag", 1, 14, 1, None), ("big", 1, 15, 40, None), ("s", 8, 64, 0, 0)]
    assert layout.struct.format == endian + "8xh6x"


@pytest.mark.parametrize("endian", ["<", ">"])
def test_signed_bitfield_limits(endian):
    layout = layout_of(lambda b, t: b.struct("s", 4, [("x", t.s32, 0, 4), ("y", t.s32, 4, 4),
                                                       ("z", t.u32, 8, 4)]), endian)
    # x = -8 (0b1000), y = 7 (0b0111), z = 15
    raw = bytes([0x78, 0x0F, 0, 0]) if endian == "<" else bytes([0x87, 0xF0, 0, 0])
    assert layout.decode(raw) == {"x": -8, "y": 7, "z": 15}
    raw = bytes([0xFF, 0, 0, 0])
    assert layout.decode(raw) == {"x": -1, "y": -1, "z": 0}


def test_one_bit_signed_bitfield():
    layout = layout_of(lambda b, t: b.struct("s", 1, [("neg", t.s8, 0, 1), ("pos", t.u8, 1, 1)]))
    assert layout.decode(b"\x03") == {"neg": -1, "pos": 1}
    assert layout.decode(b"\x00") == {"neg": 0, "pos": 0}


def test_64_bit_bitfield_in_a_128_bit_word():
    layout = layout_of(lambda b, t: b.struct("s", 16, [("lo", t.u64, 0, 4), ("mid", t.s64, 4, 64)]))
    raw = ((-3 & (2**64 - 1)) << 4 | 9).to_bytes(16, "little")
    assert layout.decode(raw) == {"lo": 9, "mid": -3}


def test_bitfields_without_kind_flag_use_the_int_bits():
    # The older encoding (btf.rst): kind_flag clear, the member's int type
    # carries the bitfield size in BTF_INT_BITS.
    def build(b, t):  # type: ignore[no-untyped-def]
        u3 = b.int("unsigned int", 4, 0, bits=3)
        s5 = b.int("int", 4, ENC_SIGNED, bits=5)
        s4 = b.int("int", 4, ENC_SIGNED, bits=4)
        return b.struct("bf", 16, [("a", u3, 0), ("b", s5, 3), ("c", s4, 8), ("s", t.s16, 64)], kflag=False)
    layout = layout_of(build)
    assert layout.decode(CLANG_BPFEL) == {"a": 5, "b": -11, "c": 6, "s": -2}
    assert [(f.bit_offset, f.bit_size) for f in layout.fields] == [(0, 3), (3, 5), (8, 4), (64, 0)]


def test_int_offset_without_kind_flag():
    def build(b, t):  # type: ignore[no-untyped-def]
        shifted = b.int("unsigned int", 4, 0, bits=4, offset=4)
        return b.struct("s", 4, [("hi", shifted, 0)], kflag=False)
    assert layout_of(build).decode(b"\xa5\0\0\0") == {"hi": 0xA}


# -- floats, pointers, opaque -------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
def test_float_and_double(endian):
    layout = layout_of(lambda b, t: b.struct("f", 16, [("f", t.float, 0), ("d", t.double, 64)]), endian)
    raw = struct.pack(endian + "f4xd", 0.1, -2.5e300)
    assert layout.decode(raw) == {"f": struct.unpack("<f", struct.pack("<f", 0.1))[0], "d": -2.5e300}
    assert layout.decode(raw)["f"] == 0.10000000149011612
    nan = layout.decode(struct.pack(endian + "f4xd", math.inf, math.nan))
    assert nan["f"] == math.inf
    assert math.isnan(nan["d"])
    assert [(f.kind, f.signed) for f in layout.fields] == [(FieldKind.FLOAT, True), (FieldKind.FLOAT, True)]


def test_long_double_is_opaque_bytes():
    layout = layout_of(lambda b, t: b.struct("ld", 16, [("x", b.float("long double", 16), 0)]))
    assert layout.decode(bytes(range(16))) == {"x": bytes(range(16))}
    assert layout.fields[0].kind == FieldKind.OPAQUE


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pointers_are_unsigned_64_bit(endian):
    def build(b, t):  # type: ignore[no-untyped-def]
        task = b.fwd("task_struct")
        return b.struct("p", 16, [("task", b.ptr(task), 0), ("name", b.ptr(b.const(t.char)), 64)])
    layout = layout_of(build, endian)
    raw = struct.pack(endian + "QQ", 0xFFFF8881_2345_6780, 0)
    assert layout.decode(raw) == {"task": 0xFFFF888123456780, "name": 0}
    assert [(f.kind, f.type_name, f.size) for f in layout.fields] == [
        (FieldKind.INT, "struct task_struct *", 8), (FieldKind.INT, "const char *", 8)]


def test_qualified_members_keep_their_typedef_names():
    def build(b, t):  # type: ignore[no-untyped-def]
        u64 = b.typedef("__u64", t.u64)
        return b.struct("q", 8, [("ts", b.const(b.volatile(u64)), 0)])
    layout = layout_of(build)
    assert layout.fields[0].type_name == "__u64"
    assert layout.decode(struct.pack("<Q", 42)) == {"ts": 42}


# -- the Layout object ---------------------------------------------------------------------------


def test_field_lookup():
    layout = comm_layout()
    assert layout.field("pid") == layout.fields[0]
    with pytest.raises(KeyError):
        layout.field("nope")


def test_decode_from_a_memoryview_inside_a_bigger_buffer():
    layout = layout_of(clang_bitfields)
    view = memoryview(CLANG_BPFEL + b"\xff" * 8)
    assert layout.decode(view)["big"] == 0x12345678AB


def test_to_dict_needs_the_record_for_raw_fields():
    layout = layout_of(clang_bitfields)
    values = layout.struct.unpack(CLANG_BPFEL)
    with pytest.raises(ValueError, match=r"^raw record needed for field a$"):
        layout.to_dict(values)
    assert layout.to_dict(values, CLANG_BPFEL)["c"] == 6


def test_short_record_is_a_struct_error():
    with pytest.raises(struct.error):
        comm_layout().decode(bytes(19))


def test_layout_of_a_typedef_to_a_struct_and_of_a_non_struct():
    b = BtfBuilder()
    t = Types(b)
    s = b.struct("s", 1, [("x", t.u8, 0)])
    td = b.typedef("s_t", s)
    btf = Btf.parse(b.build())
    assert struct_layout(btf, td).decode(b"\x09") == {"x": 9}
    assert struct_layout(btf, td).name == "s"
    with pytest.raises(BTFError, match=r"^BTF type 1 is int, not a struct$"):
        struct_layout(btf, t.s8)
    with pytest.raises(BTFError, match=r"^BTF type 0 is void, not a struct$"):
        struct_layout(btf, 0)


def test_field_is_frozen():
    f = comm_layout().fields[0]
    assert isinstance(f, Field)
    with pytest.raises(AttributeError):
        f.name = "x"  # type: ignore[misc]


# -- value_decoder -------------------------------------------------------------------------------


def test_value_decoder_for_every_kind():
    b = BtfBuilder(">")
    t = Types(b)
    color = b.enum("color", [("RED", 0), ("BLUE", 2)])
    arr = b.array(t.u32, 2)
    name = b.array(t.char, 6)
    pair = b.struct("pair", 4, [("a", t.u16, 0), ("b", t.s16, 16)])
    td = b.typedef("pair_t", pair)
    btf = Btf.parse(b.build())
    assert value_decoder(btf, t.u32)(b"\x00\x00\x01\x00") == 256
    assert value_decoder(btf, t.s64)(b"\xff" * 8) == -1
    assert value_decoder(btf, t.s128)(b"\xff" * 16) == -1
    assert value_decoder(btf, t.bool)(b"\x01") is True
    assert value_decoder(btf, t.double)(struct.pack(">d", 0.25)) == 0.25
    assert value_decoder(btf, color)(b"\0\0\0\x02") == "BLUE"
    assert value_decoder(btf, color)(b"\0\0\0\x03") == 3
    assert value_decoder(btf, arr)(b"\0\0\0\x01\0\0\0\x02") == [1, 2]
    assert value_decoder(btf, name)(b"sshd\0\xff") == "sshd"
    assert value_decoder(btf, td)(b"\x00\x05\xff\xfe") == {"a": 5, "b": -2}


# -- the upstream event ---------------------------------------------------------------------------


def test_upstream_bootstrap_event_decodes():
    doc = json.loads((UPSTREAM / "bootstrap.json").read_text())
    spec = ObjectSpec(zlib.decompress(base64.b64decode(doc["bpf_object"])))
    layout = struct_layout(spec.btf, 613)
    assert layout.size == 176
    assert layout.struct.format == "<iiI4xQ16s127s?I4x"
    raw = (struct.pack("<iiI4xQ", 4242, 1, 0xFFFFFFFF, 123456789) + b"ls\0stale-bytes\0\0"
           + b"/usr/bin/ls".ljust(127, b"\0") + b"\x01" + struct.pack("<I", 1) + b"\xee" * 4)
    assert len(raw) == 176
    assert layout.decode(raw) == {"pid": 4242, "ppid": 1, "exit_code": 0xFFFFFFFF, "duration_ns": 123456789,
                                  "comm": "ls", "filename": "/usr/bin/ls", "exit_event": True,
                                  "et": "EVENT_TYPE__EXIT"}
