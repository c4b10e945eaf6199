"""Grafting header structs from one BTF onto another."""

from __future__ import annotations

import pytest

from pyeunomia.compiler.btfmerge import merge_structs
from pyeunomia.compiler.btfwrite import encode_btf
from pyeunomia.errors import CompileError
from pyeunomia.format.btf import Btf, BtfType, Kind, Member
from pyeunomia.format.layout import struct_layout

VOID = BtfType(0, Kind.VOID, "void")


def program_btf() -> list[BtfType]:
    """What a program's object might hold: ints, an array, a map struct."""
    return [
        VOID,
        BtfType(1, Kind.INT, "int", size=4, encoding=1, bits=32),
        BtfType(2, Kind.INT, "__ARRAY_SIZE_TYPE__", size=4, bits=32),
        BtfType(3, Kind.INT, "char", size=1, encoding=1, bits=8),
        BtfType(4, Kind.ARRAY, "", elem_id=3, count=16),
        BtfType(5, Kind.STRUCT, "args_t", size=4, members=[Member("flags", 1, 0)]),
    ]


def header_btf() -> Btf:
    """The BTF-only unit: same ints under other ids, plus the header's structs."""
    types = [
        VOID,
        BtfType(1, Kind.INT, "char", size=1, encoding=1, bits=8),
        BtfType(2, Kind.INT, "__ARRAY_SIZE_TYPE__", size=4, bits=32),
        BtfType(3, Kind.ARRAY, "", elem_id=1, count=16),  # same as the program's id 4
        BtfType(4, Kind.INT, "int", size=4, encoding=1, bits=32),
        BtfType(5, Kind.TYPEDEF, "pid_t", type_id=4),
        BtfType(6, Kind.INT, "unsigned long long", size=8, bits=64),
        BtfType(7, Kind.STRUCT, "point", size=8, members=[Member("x", 4, 0), Member("y", 4, 32)]),
        BtfType(8, Kind.ARRAY, "", elem_id=7, count=2),
        BtfType(9, Kind.PTR, "", type_id=10),
        BtfType(10, Kind.STRUCT, "event", size=64, members=[
            Member("pid", 5, 0), Member("ts", 6, 64), Member("comm", 3, 128),
            Member("corners", 8, 256), Member("next", 9, 384), Member("flag", 4, 448, 1)]),
        BtfType(11, Kind.STRUCT, "args_t", size=4, members=[Member("flags", 4, 0)]),
    ]
    return Btf.parse(encode_btf(types, array_index_id=2))


def test_struct_and_its_types_are_appended_reusing_equal_ones():
    blob = encode_btf(program_btf(), array_index_id=2)
    grown, copied = merge_structs(blob, "<", header_btf(), ["event"], "x.h")
    assert copied == ["event"]
    btf = Btf.parse(grown)
    assert btf.types[:6] == program_btf()  # ids of the program's own types do not move
    event = btf.find("event", Kind.STRUCT)
    assert event is not None and event.id > 5
    by_name = {m.name: m for m in event.members}
    assert by_name["comm"].type_id == 4  # char[16] already there: reused
    assert btf.c_name(by_name["pid"].type_id) == "pid_t"
    assert btf.resolve(by_name["pid"].type_id).id == 1  # int reused under the typedef
    assert btf.c_name(by_name["corners"].type_id) == "struct point[2]"
    assert btf.c_name(by_name["next"].type_id) == "struct event *"
    assert btf.resolve(btf[by_name["next"].type_id].type_id).id == event.id  # points to itself
    assert (by_name["flag"].bit_offset, by_name["flag"].bit_size) == (448, 1)
    layout = struct_layout(btf, event.id)
    assert [f.name for f in layout.fields] == ["pid", "ts", "comm", "corners", "next", "flag"]
    assert layout.size == 64
    # nothing duplicated: each new type appears once
    names = [t.name for t in btf.types[6:] if t.name]
    assert sorted(names) == sorted(["event", "pid_t", "unsigned long long", "point"])


def test_struct_already_in_the_program_is_used_as_it_is():
    blob = encode_btf(program_btf(), array_index_id=2)
    grown, copied = merge_structs(blob, "<", header_btf(), ["args_t"], "x.h")
    assert copied == [] and grown == blob


def test_struct_missing_from_the_header_btf_is_named():
    blob = encode_btf(program_btf(), array_index_id=2)
    with pytest.raises(CompileError, match=r"struct nowhere from x\.h is not in the BTF"):
        merge_structs(blob, "<", header_btf(), ["nowhere"], "x.h")


def test_array_index_type_is_added_when_the_program_has_none():
    target = [VOID, BtfType(1, Kind.INT, "int", size=4, encoding=1, bits=32)]
    grown, _ = merge_structs(encode_btf(target), "<", header_btf(), ["point", "event"], "x.h")
    btf = Btf.parse(grown)
    assert btf.find("__ARRAY_SIZE_TYPE__", Kind.INT) is not None
    assert btf.find("point", Kind.STRUCT) is not None
    assert sum(1 for t in btf.types if t.kind == Kind.STRUCT and t.name == "point") == 1
