"""pyeunomia.format.btf: every kind parsed, C spellings, sizes, and malformed blobs."""

from __future__ import annotations

import base64
import json
import random
import struct
import zlib
from pathlib import Path

import pytest

from pyeunomia.errors import PackageError
from pyeunomia.format.btf import INT_BOOL, INT_CHAR, INT_SIGNED, Btf, BTFError, Kind, Member, SectionVar
from pyeunomia.format.elf import ElfFile
from tests.btfbuilder import (
    ENC_BOOL,
    ENC_CHAR,
    ENC_SIGNED,
    KIND_ARRAY,
    KIND_DATASEC,
    KIND_DECL_TAG,
    KIND_ENUM,
    KIND_ENUM64,
    KIND_FUNC_PROTO,
    KIND_INT,
    KIND_PTR,
    KIND_STRUCT,
    KIND_UNION,
    KIND_VAR,
    LINKAGE_EXTERN,
    LINKAGE_GLOBAL,
    LINKAGE_STATIC,
    BtfBuilder,
    btf_info,
)

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def upstream_btf(name: str) -> Btf:
    doc = json.loads((UPSTREAM / f"{name}.json").read_text())
    elf = ElfFile(zlib.decompress(base64.b64decode(doc["bpf_object"])))
    sec = elf.section(".BTF")
    assert sec is not None
    return Btf.parse(elf.section_bytes(sec))


def all_kinds(endian: str = "<") -> bytes:
    """One type of every kind, ids 1..27 as commented."""
    b = BtfBuilder(endian)
    b.int("int", 4, ENC_SIGNED)                                         # 1
    b.int("unsigned int", 4)                                            # 2
    b.int("char", 1, ENC_SIGNED | ENC_CHAR)                             # 3
    b.int("_Bool", 1, ENC_BOOL)                                         # 4
    b.int("__int128 unsigned", 16)                                      # 5
    b.int("__int128", 16, ENC_SIGNED)                                   # 6
    b.ptr(1)                                                            # 7
    b.array(3, 16, 2)                                                   # 8
    b.struct("pair", 8, [("a", 1, 0), ("b", 2, 32)])                    # 9
    b.struct("flags", 4, [("lo", 2, 0, 3), ("hi", 1, 3, 29)])           # 10
    b.union("either", 4, [("i", 1, 0), ("u", 2, 0)])                    # 11
    b.enum("uns", [("ZERO", 0), ("ALL", 0xFFFFFFFF)])                   # 12
    b.enum("sgn", [("NEG", -2), ("POS", 7)], size=1, signed=True)       # 13
    b.enum64("big", [("HUGE", 1 << 63), ("ONE", 1)])                    # 14
    b.enum64("sbig", [("MIN", -(1 << 63)), ("M1", -1)], signed=True)    # 15
    b.fwd("later")                                                      # 16
    b.fwd("ulater", union=True)                                         # 17
    b.typedef("u32_t", 2)                                               # 18
    b.volatile(1)                                                       # 19
    b.const(19)                                                         # 20
    b.restrict(7)                                                       # 21
    b.func_proto(1, [("ctx", 7), ("", 0)])                              # 22
    b.func("handler", 22, LINKAGE_GLOBAL)                               # 23
    b.var("counter", 20, LINKAGE_GLOBAL)                                # 24
    b.datasec(".data", [(24, 4, 4)], 8)                                 # 25
    b.float("double", 8)                                                # 26
    b.decl_tag("kfunc", 23, -1)                                         # 27
    b.type_tag("user", 1)                                               # 28
    return b.build()


# -- parsing every kind ---------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
def test_every_kind_parses(endian):
    btf = Btf.parse(all_kinds(endian))
    assert btf.endian == endian
    assert len(btf) == 29
    assert [t.kind for t in btf.types] == [
        Kind.VOID, Kind.INT, Kind.INT, Kind.INT, Kind.INT, Kind.INT, Kind.INT, Kind.PTR, Kind.ARRAY,
        Kind.STRUCT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM, Kind.ENUM64, Kind.ENUM64,
        Kind.FWD, Kind.FWD, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.FUNC_PROTO,
        Kind.FUNC, Kind.VAR, Kind.DATASEC, Kind.FLOAT, Kind.DECL_TAG, Kind.TYPE_TAG]
    assert [t.id for t in btf.types] == list(range(29))
    assert [t.name for t in btf.types] == [
        "void", "int", "unsigned int", "char", "_Bool", "__int128 unsigned", "__int128", "", "", "pair",
        "flags", "either", "uns", "sgn", "big", "sbig", "later", "ulater", "u32_t", "", "", "", "", "handler",
        "counter", ".data", "double", "kfunc", "user"]

    i, u, c, bo, u128, s128 = btf[1], btf[2], btf[3], btf[4], btf[5], btf[6]
    assert (i.size, i.encoding, i.bits, i.bit_offset) == (4, INT_SIGNED, 32, 0)
    assert (u.size, u.encoding, u.bits) == (4, 0, 32)
    assert (c.size, c.encoding, c.bits) == (1, INT_SIGNED | INT_CHAR, 8)
    assert (bo.size, bo.encoding, bo.bits) == (1, INT_BOOL, 8)
    assert (u128.size, u128.encoding, u128.bits) == (16, 0, 128)
    assert (s128.size, s128.encoding, s128.bits) == (16, INT_SIGNED, 128)

    assert btf[7].type_id == 1
    assert (btf[8].elem_id, btf[8].count) == (3, 16)
    assert btf[9].size == 8
    assert btf[9].members == [Member("a", 1, 0, 0), Member("b", 2, 32, 0)]
    assert btf[10].members == [Member("lo", 2, 0, 3), Member("hi", 1, 3, 29)]
    assert btf[11].members == [Member("i", 1, 0, 0), Member("u", 2, 0, 0)]
    assert (btf[12].size, btf[12].signed, btf[12].enumerators) == (4, False, [("ZERO", 0), ("ALL", 0xFFFFFFFF)])
    assert (btf[13].size, btf[13].signed, btf[13].enumerators) == (1, True, [("NEG", -2), ("POS", 7)])
    assert (btf[14].size, btf[14].signed, btf[14].enumerators) == (8, False, [("HUGE", 1 << 63), ("ONE", 1)])
    assert (btf[15].signed, btf[15].enumerators) == (True, [("MIN", -(1 << 63)), ("M1", -1)])
    assert (btf[16].fwd_union, btf[17].fwd_union) == (False, True)
    assert [btf[n].type_id for n in (18, 19, 20, 21)] == [2, 1, 19, 7]
    assert (btf[22].type_id, btf[22].params) == (1, [("ctx", 7), ("", 0)])
    assert btf[23].type_id == 22
    assert (btf[24].type_id, btf[24].linkage) == (20, LINKAGE_GLOBAL)
    assert (btf[25].size, btf[25].vars) == (8, [SectionVar(24, 4, 4)])
    assert btf[26].size == 8
    assert btf[27].type_id == 23
    assert btf[28].type_id == 1


def test_int_bit_offset_and_bits_fields():
    b = BtfBuilder()
    b.int("odd", 4, ENC_SIGNED, bits=5, offset=3)
    t = Btf.parse(b.build())[1]
    assert (t.size, t.encoding, t.bits, t.bit_offset) == (4, INT_SIGNED, 5, 3)


def test_var_linkages():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)
    b.var("s", 1, LINKAGE_STATIC)
    b.var("g", 1, LINKAGE_GLOBAL)
    b.var("x", 1, LINKAGE_EXTERN)
    btf = Btf.parse(b.build())
    assert [btf[n].linkage for n in (2, 3, 4)] == [0, 1, 2]


def test_unsigned_enum_without_kind_flag_keeps_high_values_unsigned():
    b = BtfBuilder()
    b.enum("e", [("MINUS_ONE_AS_STORED", -1 & 0xFFFFFFFF)])
    assert Btf.parse(b.build())[1].enumerators == [("MINUS_ONE_AS_STORED", 4294967295)]


def test_header_longer_than_24_bytes_and_sections_out_of_order():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)
    types, strings = b.type_bytes(), bytes(b.strings)
    # a 32-byte header, the strings first, then the types
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 32, len(strings), len(types), 0, len(strings)).ljust(32, b"\0")
    btf = Btf.parse(header + strings + types)
    assert (btf[1].kind, btf[1].name, btf[1].size) == (Kind.INT, "int", 4)


def test_gap_between_types_and_strings():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)
    assert Btf.parse(b.build(gap=12))[1].name == "int"


def test_empty_type_section_has_only_void():
    btf = Btf.parse(BtfBuilder().build())
    assert len(btf) == 1
    assert btf[0].kind == Kind.VOID
    assert btf.c_name(0) == "void"


def test_invalid_utf8_name_is_replaced():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)
    blob = b.build().replace(b"int\0", b"i\xfft\0")
    assert Btf.parse(blob)[1].name == "i\ufffdt"


# -- lookup ---------------------------------------------------------------------


def test_find_datasec_and_item_access():
    btf = Btf.parse(all_kinds())
    found = btf.find("pair", Kind.STRUCT)
    assert found is not None
    assert found.id == 9
    assert btf.find("pair", Kind.UNION) is None
    assert btf.find("nothing", Kind.STRUCT) is None
    sec = btf.datasec(".data")
    assert sec is not None
    assert sec.id == 25
    assert btf.datasec(".bss") is None
    with pytest.raises(BTFError, match=r"^BTF type id 29 is out of range$"):
        btf[29]
    with pytest.raises(BTFError, match=r"^BTF type id -1 is out of range$"):
        btf[-1]


def test_resolve_follows_typedefs_qualifiers_and_type_tags():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)    # 1
    b.type_tag("user", 1)          # 2
    b.volatile(2)                  # 3
    b.const(3)                     # 4
    b.typedef("myint", 4)          # 5
    b.restrict(5)                  # 6
    b.ptr(5)                       # 7
    btf = Btf.parse(b.build())
    assert btf.resolve(6).id == 1
    assert btf.resolve(5).id == 1
    assert btf.resolve(7).id == 7  # a pointer is not transparent
    assert btf.resolve(0).kind == Kind.VOID


def test_strip_qualifiers_keeps_typedef_names():
    b = BtfBuilder()
    b.int("unsigned long long", 8)  # 1
    b.typedef("__u64", 1)           # 2
    b.volatile(2)                   # 3
    b.const(3)                      # 4
    b.restrict(4)                   # 5
    b.type_tag("user", 2)           # 6
    btf = Btf.parse(b.build())
    assert btf.strip_qualifiers(5) == 2
    assert btf.strip_qualifiers(6) == 2
    assert btf.strip_qualifiers(2) == 2
    assert btf.c_name(btf.strip_qualifiers(5)) == "__u64"
    assert btf.c_name(5) == "restrict const volatile __u64"


# -- C spellings --------------------------------------------------------------------


@pytest.fixture
def spelled() -> Btf:
    b = BtfBuilder()
    b.int("unsigned long long", 8)                 # 1
    b.int("char", 1, ENC_SIGNED)                   # 2
    b.array(2, 16)                                 # 3  char[16]
    b.struct("event", 24, [("x", 1, 0)])           # 4
    b.ptr(4)                                       # 5  struct event *
    b.int("unsigned int", 4)                       # 6
    b.typedef("__u32", 6)                          # 7
    b.array(7, 26)                                 # 8  __u32[26]
    b.array(2, 3)                                  # 9  char[3]
    b.array(9, 2)                                  # 10 char[2][3]
    b.const(2)                                     # 11 const char
    b.ptr(11)                                      # 12 const char *
    b.ptr(12)                                      # 13 const char **
    b.ptr(0)                                       # 14 void *
    b.union("", 4, [("a", 6, 0)])                  # 15 union (anon)
    b.enum("", [("A", 0)])                         # 16 enum (anon)
    b.enum64("wide", [("B", 1)])                   # 17 enum wide
    b.fwd("task_struct")                           # 18 struct task_struct
    b.fwd("bpf_attr", union=True)                  # 19 union bpf_attr
    b.ptr(18)                                      # 20 struct task_struct *
    b.volatile(6)                                  # 21 volatile unsigned int
    b.const(21)                                    # 22 const volatile unsigned int
    b.float("double", 8)                           # 23
    b.func_proto(6, [("x", 6)])                    # 24
    b.func("f", 24)                                # 25
    b.var("v", 6)                                  # 26
    b.datasec(".bss", [(26, 0, 4)])                # 27
    b.ptr(2)                                       # 28 char *
    b.const(28)                                    # 29 char *const
    b.ptr(29)                                      # 30 char *const *
    b.ptr(24)                                      # 31 a function pointer
    b.ptr(3)                                       # 32 char (*)[16]
    b.array(5, 4)                                  # 33 struct event *[4]
    b.ptr(33)                                      # 34 struct event *(*)[4]
    b.type_tag("user", 28)                         # 35 char * (the tag is not C)
    b.ptr(35)                                      # 36 char **
    b.restrict(28)                                 # 37 char *restrict
    b.decl_tag("tag", 4, 0)                        # 38
    return Btf.parse(b.build())


@pytest.mark.parametrize(("type_id", "spelling"), [
    (0, "void"),
    (1, "unsigned long long"),
    (3, "char[16]"),
    (4, "struct event"),
    (5, "struct event *"),
    (7, "__u32"),
    (8, "__u32[26]"),
    (10, "char[2][3]"),
    (11, "const char"),
    (12, "const char *"),
    (13, "const char **"),
    (14, "void *"),
    (15, "union (anon)"),
    (16, "enum (anon)"),
    (17, "enum wide"),
    (18, "struct task_struct"),
    (19, "union bpf_attr"),
    (20, "struct task_struct *"),
    (21, "volatile unsigned int"),
    (22, "const volatile unsigned int"),
    (23, "double"),
    (24, "void (*)(...)"),
    (25, "f"),
    (26, "v"),
    (27, ".bss"),
    (28, "char *"),
    (35, "char *"),
    (36, "char **"),
    (38, "tag"),
])
def test_c_name(spelled, type_id, spelling):
    assert spelled.c_name(type_id) == spelling


@pytest.mark.parametrize(("type_id", "spelling"), [
    (29, "char *const"),              # a const pointer, not a pointer to const char
    (30, "char *const *"),
    (37, "char *restrict"),
    (31, "void (*)(...)"),            # a pointer to a function is one pointer
    (32, "char (*)[16]"),             # a pointer to an array
    (33, "struct event *[4]"),        # an array of pointers
    (34, "struct event *(*)[4]"),
])
def test_c_name_of_qualified_pointers_and_pointers_to_arrays(spelled, type_id, spelling):
    assert spelled.c_name(type_id) == spelling


def test_c_name_of_upstream_event_members_matches_the_package_metadata():
    btf = upstream_btf("bootstrap")
    event = btf.find("event", Kind.STRUCT)
    assert event is not None
    assert event.id == 613
    names = [(m.name, btf.c_name(btf.strip_qualifiers(m.type_id))) for m in event.members]
    assert names == [("pid", "int"), ("ppid", "int"), ("exit_code", "unsigned int"),
                     ("duration_ns", "unsigned long long"), ("comm", "char[16]"), ("filename", "char[127]"),
                     ("exit_event", "bool"), ("et", "enum event_type")]


def test_c_name_of_upstream_hist_and_globals():
    btf = upstream_btf("runqlat")
    hist = btf.find("hist", Kind.STRUCT)
    assert hist is not None
    assert [btf.c_name(m.type_id) for m in hist.members] == ["__u32[26]", "char[16]"]
    var = btf.find("targ_tgid", Kind.VAR)
    assert var is not None
    assert btf.c_name(var.type_id) == "const volatile pid_t"
    assert btf.c_name(btf.strip_qualifiers(var.type_id)) == "pid_t"
    dummy = btf.find("__eunomia_dummy_hist_ptr", Kind.VAR)
    assert dummy is not None
    assert btf.c_name(dummy.type_id) == "const volatile struct hist *"


# -- sizes ------------------------------------------------------------------------


@pytest.mark.parametrize(("type_id", "size"), [
    (1, 4), (3, 1), (5, 16), (7, 8), (8, 16), (9, 8), (10, 4), (11, 4), (12, 4), (13, 1), (14, 8),
    (18, 4), (19, 4), (20, 4), (21, 8), (25, 8), (26, 8), (28, 4),
])
def test_size_of(type_id, size):
    assert Btf.parse(all_kinds()).size_of(type_id) == size


def test_size_of_multi_dimensional_and_typedef_arrays():
    b = BtfBuilder()
    b.int("short", 2, ENC_SIGNED)   # 1
    b.array(1, 3)                   # 2 short[3]
    b.array(2, 5)                   # 3 short[5][3]
    b.typedef("grid", 3)            # 4
    b.array(4, 2)                   # 5 grid[2]
    b.array(1, 0)                   # 6 short[0]
    btf = Btf.parse(b.build())
    assert [btf.size_of(n) for n in (2, 3, 4, 5, 6)] == [6, 30, 30, 60, 0]
    assert btf.c_name(5) == "grid[2]"


@pytest.mark.parametrize(("type_id", "kind"), [
    (0, "VOID"), (16, "FWD"), (17, "FWD"), (22, "FUNC_PROTO"), (23, "FUNC"), (24, "VAR"), (27, "DECL_TAG"),
])
def test_size_of_unsized_kinds(type_id, kind):
    with pytest.raises(BTFError, match=rf"^BTF type {type_id} \({kind}\) has no size$"):
        Btf.parse(all_kinds()).size_of(type_id)


# -- data sections ----------------------------------------------------------------


def test_place_section_vars_from_symbols_and_section_sizes():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)               # 1
    b.int("char", 1, ENC_SIGNED)              # 2
    b.array(2, 10)                            # 3
    b.var("a", 1)                             # 4
    b.var("name", 3)                          # 5
    b.var("stat", 1, LINKAGE_STATIC)          # 6
    b.var("unknown", 1)                       # 7
    b.func_proto(0, [])                       # 8
    b.var("weird", 8)                         # 9 a VAR of an unsized type
    b.datasec(".data", [(4, 0, 0), (5, 0, 0), (6, 0, 0), (7, 12, 0), (9, 0, 3)])  # 10: clang's zeros
    b.datasec(".bss", [])                     # 11
    btf = Btf.parse(b.build())
    btf.place_section_vars({".data": 40, ".text": 8},
                           {(".data", "a"): 16, (".data", "name"): 20, (".data", "stat"): 32,
                            (".bss", "a"): 99})
    sec = btf[10]
    assert sec.size == 40
    assert sec.vars == [SectionVar(4, 16, 4), SectionVar(5, 20, 10), SectionVar(6, 32, 4),
                        SectionVar(7, 12, 4), SectionVar(9, 0, 3)]
    assert btf[11].size == 0  # no size given for .bss: unchanged


def test_upstream_datasec_offsets_come_from_the_symbol_table():
    btf = upstream_btf("runqlat")
    rodata = btf.datasec(".rodata")
    assert rodata is not None
    assert [v.offset for v in rodata.vars] == [0, 0, 0, 0, 0, 0]  # clang left them zero
    btf.place_section_vars({".rodata": 12}, {(".rodata", "targ_ms"): 4, (".rodata", "targ_tgid"): 8})
    assert rodata.size == 12
    assert [(btf[v.type_id].name, v.offset, v.size) for v in rodata.vars] == [
        ("filter_cg", 0, 1), ("targ_per_process", 0, 1), ("targ_per_thread", 0, 1),
        ("targ_per_pidns", 0, 1), ("targ_ms", 4, 1), ("targ_tgid", 8, 4)]


# -- malformed blobs ----------------------------------------------------------------


def one_int() -> BtfBuilder:
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)
    return b


@pytest.mark.parametrize(("blob", "message"), [
    (b"", "BTF is truncated"),
    (b"\x9f\xeb" + bytes(21), "BTF is truncated"),
    (bytes(24), "not BTF (bad magic)"),
    (b"\xeb\x9e" + bytes(22), "not BTF (bad magic)"),
    (struct.pack("<HBBIIIII", 0xEB9F, 2, 0, 24, 0, 0, 0, 0), "unsupported BTF version 2"),
    (struct.pack(">HBBIIIII", 0xEB9F, 0, 0, 24, 0, 0, 0, 0), "unsupported BTF version 0"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 16, 0, 0, 0, 0), "BTF header length is out of range"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 25, 0, 0, 0, 0), "BTF header length is out of range"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 1, 0, 0), "BTF type or string section lies outside the blob"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 1, 0), "BTF type or string section lies outside the blob"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0xFFFFFFFF, 2), "BTF type or string section lies outside "
                                                                        "the blob"),
])
def test_bad_headers(blob, message):
    with pytest.raises(BTFError) as err:
        Btf.parse(blob)
    assert str(err.value) == message


def test_btf_error_is_a_package_error():
    assert issubclass(BTFError, PackageError)


def test_type_section_not_a_whole_type():
    b = one_int()
    blob = b.build(type_len=len(b.type_bytes()) - 4, str_off=len(b.type_bytes()))
    with pytest.raises(BTFError, match=r"^BTF type 1 is truncated$"):
        Btf.parse(blob)
    blob = b.build(type_len=8, str_off=len(b.type_bytes()))
    with pytest.raises(BTFError, match=r"^BTF type section is truncated$"):
        Btf.parse(blob)


@pytest.mark.parametrize(("kind", "vlen", "extra"), [
    (KIND_INT, 0, 3),
    (KIND_ARRAY, 0, 11),
    (KIND_STRUCT, 2, 23),
    (KIND_UNION, 1, 0),
    (KIND_ENUM, 2, 15),
    (KIND_ENUM64, 1, 11),
    (KIND_FUNC_PROTO, 1, 7),
    (KIND_VAR, 0, 0),
    (KIND_DATASEC, 3, 35),
    (KIND_DECL_TAG, 0, 2),
])
def test_truncated_kind_data(kind, vlen, extra):
    b = BtfBuilder()
    b.raw(0, btf_info(kind, vlen), 0, bytes(extra))
    with pytest.raises(BTFError, match=r"^BTF type 1 is truncated$"):
        Btf.parse(b.build())


@pytest.mark.parametrize("kind_no", [20, 21, 31])
def test_unknown_kind(kind_no):
    b = BtfBuilder()
    b.raw(0, kind_no << 24, 0)
    with pytest.raises(BTFError, match=f"^unknown BTF kind {kind_no}$"):
        Btf.parse(b.build())


def test_string_offset_out_of_range():
    b = BtfBuilder()
    b.raw(500, btf_info(KIND_PTR), 0)
    with pytest.raises(BTFError, match=r"^BTF string offset is out of range$"):
        Btf.parse(b.build())


def test_member_name_offset_out_of_range():
    b = one_int()
    b.raw(0, btf_info(KIND_STRUCT, 1), 4, struct.pack("<III", 999, 1, 0))
    with pytest.raises(BTFError, match=r"^BTF string offset is out of range$"):
        Btf.parse(b.build())


def test_string_not_terminated():
    b = one_int()
    blob = b.build()
    with pytest.raises(BTFError, match=r"^BTF string is not terminated$"):
        Btf.parse(b.build(str_len=len(b.strings) - 1))
    assert Btf.parse(blob)[1].name == "int"


def test_empty_string_section():
    b = BtfBuilder()
    b.ptr(0)  # name offset 0
    with pytest.raises(BTFError, match=r"^BTF string is not terminated$"):
        Btf.parse(b.build(str_len=0))
    with pytest.raises(BTFError, match=r"^BTF string offset is out of range$"):
        Btf.parse(one_int().build(str_len=0))


@pytest.mark.parametrize("make", [
    lambda b: b.ptr(7),
    lambda b: b.typedef("t", 100),
    lambda b: b.array(50, 2),
    lambda b: b.struct("s", 4, [("m", 3, 0)]),
    lambda b: b.union("u", 4, [("m", 1, 0), ("n", 9, 0)]),
    lambda b: b.var("v", 3),
    lambda b: b.datasec(".data", [(5, 0, 4)]),
    lambda b: b.func_proto(1, [("p", 3)]),
    lambda b: b.func_proto(12, []),
    lambda b: b.func("f", 3),
    lambda b: b.const(0xFFFFFFFF),
    lambda b: b.decl_tag("t", 3),
])
def test_reference_out_of_range(make):
    b = one_int()
    make(b)
    with pytest.raises(BTFError, match=r"^BTF type 2 refers to a type id out of range$"):
        Btf.parse(b.build())


@pytest.mark.parametrize("make", [
    lambda b: b.typedef("loop", 2),                                     # typedef to itself
    lambda b: (b.const(3), b.volatile(2)),                              # const <-> volatile
    lambda b: b.ptr(2),                                                 # pointer to itself
    lambda b: (b.ptr(3), b.typedef("p", 2)),                            # pointer <-> typedef
    lambda b: b.array(2, 4),                                            # array of itself
    lambda b: (b.array(3, 4), b.const(2)),                              # array <-> const
    lambda b: b.struct("s", 4, [("me", 2, 0)]),                         # struct holding itself
    lambda b: (b.struct("a", 4, [("b", 3, 0)]), b.struct("b", 4, [("a", 2, 0)])),
    lambda b: (b.struct("", 4, [("", 3, 0)]), b.union("", 4, [("", 2, 0)])),  # anonymous members
    lambda b: (b.struct("s", 8, [("arr", 3, 0)]), b.array(2, 2)),       # struct in its own array
    lambda b: b.type_tag("t", 2),
    lambda b: b.restrict(2),
])
def test_reference_loops_are_refused(make):
    b = one_int()
    make(b)
    with pytest.raises(BTFError, match=r"has a reference loop$"):
        Btf.parse(b.build())


def test_pointer_back_to_a_struct_is_not_a_loop():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)                                 # 1
    b.struct("node", 16, [("value", 1, 0), ("next", 3, 64)])   # 2
    b.ptr(2)                                                    # 3
    b.typedef("node_t", 2)                                      # 4
    b.ptr(4)                                                    # 5
    b.struct("list", 8, [("head", 5, 0)])                      # 6
    btf = Btf.parse(b.build())
    assert btf.c_name(3) == "struct node *"
    assert btf.c_name(5) == "node_t *"
    assert btf.size_of(2) == 16


def test_deep_but_finite_nesting_is_accepted():
    b = BtfBuilder()
    prev = b.int("int", 4, ENC_SIGNED)
    for n in range(40):
        prev = b.struct(f"s{n}", 4, [("m", prev, 0)])
    btf = Btf.parse(b.build())
    assert btf.size_of(prev) == 4
    assert btf.c_name(prev) == "struct s39"


@pytest.mark.parametrize("wrap", ["struct", "typedef", "array", "ptr"])
def test_nesting_beyond_the_limit_is_refused(wrap):
    b = BtfBuilder()
    prev = b.int("int", 4, ENC_SIGNED)
    for n in range(2000):
        if wrap == "struct":
            prev = b.struct(f"s{n}", 4, [("m", prev, 0)])
        elif wrap == "typedef":
            prev = b.typedef(f"t{n}", prev)
        elif wrap == "array":
            prev = b.array(prev, 1)
        else:
            prev = b.ptr(prev)
    with pytest.raises(BTFError, match=r"nests too deeply$"):
        Btf.parse(b.build())


def test_no_kind_flag_means_no_bitfield_sizes():
    b = one_int()
    # kind_flag clear: the whole word is the bit offset
    b.raw(0, btf_info(KIND_STRUCT, 1, kflag=False), 8, struct.pack("<III", 0, 1, (3 << 24) | 5))
    assert Btf.parse(b.build())[2].members == [Member("", 1, (3 << 24) | 5, 0)]


def every_type_walk(btf: Btf) -> None:
    for t in btf.types:
        btf.c_name(t.id)
        btf.resolve(t.id)
        btf.strip_qualifiers(t.id)
        try:
            btf.size_of(t.id)
        except BTFError:
            pass


def mutate_and_walk(base: bytes, seed: int, rounds: int, span: int | None = None) -> None:
    rng = random.Random(seed)
    limit = len(base) if span is None else span
    for _ in range(rounds):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(limit)] = rng.choice((0, 1, 2, 3, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        try:
            btf = Btf.parse(bytes(data))
        except BTFError:
            continue
        every_type_walk(btf)
        btf.place_section_vars({".data": 3}, {(".data", "counter"): 1})


def test_random_corruption_of_a_small_blob_gives_btf_errors_only():
    mutate_and_walk(all_kinds(), seed=7, rounds=4000)
    mutate_and_walk(all_kinds(">"), seed=8, rounds=2000)


def test_random_corruption_of_upstream_btf_gives_btf_errors_only():
    doc = json.loads((UPSTREAM / "runqlat.json").read_text())
    elf = ElfFile(zlib.decompress(base64.b64decode(doc["bpf_object"])))
    sec = elf.section(".BTF")
    assert sec is not None
    blob = elf.section_bytes(sec)
    (str_off,) = struct.unpack_from("<I", blob, 16)
    mutate_and_walk(blob, seed=3, rounds=150, span=24 + str_off)  # header and types


def test_random_truncation_gives_btf_errors_only():
    blob = all_kinds()
    for n in range(len(blob)):
        try:
            every_type_walk(Btf.parse(blob[:n]))
        except BTFError:
            pass


def test_a_program_btf_with_more_types_than_any_program_has_is_refused():
    """5 million FLOAT types inflate from a 152 KiB package: parsing them all
    once took 68 s and 3.2 GB. A program's BTF is capped; a kernel's is not."""
    from pyeunomia.format.btf import MAX_OBJECT_TYPES

    b = BtfBuilder()
    for _ in range(MAX_OBJECT_TYPES + 1):
        b.float("f", 4)
    blob = b.build()
    with pytest.raises(BTFError, match=f"more than {MAX_OBJECT_TYPES} BTF types"):
        Btf.parse(blob)
    assert len(Btf.parse(blob, max_types=None).types) == MAX_OBJECT_TYPES + 2  # void, then every float
