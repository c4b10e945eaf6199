"""Pieces of the meta object: type spellings, initial values, export order."""

from __future__ import annotations

from pyeunomia.compiler.btfwrite import encode_btf
from pyeunomia.compiler.meta import initial_value, order_exports, sorted_keys
from pyeunomia.format.btf import Btf, BtfType, Kind, Member
from pyeunomia.format.objspec import GlobalVar


def sample_btf() -> Btf:
    types = [
        BtfType(0, Kind.VOID, "void"),
        BtfType(1, Kind.INT, "char", size=1, encoding=1, bits=8),
        BtfType(2, Kind.VOLATILE, "", type_id=1),
        BtfType(3, Kind.CONST, "", type_id=2),
        BtfType(4, Kind.ARRAY, "", elem_id=3, count=16),  # const volatile char[16]
        BtfType(5, Kind.INT, "int", size=4, encoding=1, bits=32),
        BtfType(6, Kind.TYPEDEF, "pid_t", type_id=5),
        BtfType(7, Kind.CONST, "", type_id=6),
        BtfType(8, Kind.INT, "_Bool", size=1, encoding=4, bits=8),
        BtfType(9, Kind.TYPEDEF, "bool", type_id=8),
        BtfType(10, Kind.INT, "unsigned int", size=4, bits=32),
        BtfType(11, Kind.TYPEDEF, "u32", type_id=10),
        BtfType(12, Kind.FLOAT, "float", size=4),
        BtfType(13, Kind.ENUM, "color", size=4, enumerators=[("RED", 1)]),
        BtfType(14, Kind.PTR, "", type_id=3),
        BtfType(15, Kind.STRUCT, "point", size=8, members=[Member("x", 5, 0), Member("y", 5, 32)]),
        BtfType(16, Kind.ARRAY, "", elem_id=15, count=2),
        BtfType(17, Kind.STRUCT, "event", size=16, members=[Member("corners", 16, 0)]),
        BtfType(18, Kind.STRUCT, "other", size=4, members=[Member("n", 5, 0)]),
    ]
    return Btf.parse(encode_btf(types))


def var(type_id: int, initial: bytes) -> GlobalVar:
    return GlobalVar("v", ".rodata", 0, len(initial), type_id, "", initial)


def test_type_names_drop_qualifiers_also_inside_arrays():
    btf = sample_btf()
    assert btf.plain_c_name(4) == "char[16]"
    assert btf.plain_c_name(7) == "pid_t"
    assert btf.plain_c_name(14) == "const volatile char *"  # a pointer's target keeps its qualifiers


def test_initial_values_upstream_can_take():
    btf = sample_btf()
    assert initial_value(btf, var(7, (-5).to_bytes(4, "little", signed=True)), "pid_t") == -5
    assert initial_value(btf, var(7, bytes(4)), "pid_t") is None  # zero: upstream's own default
    assert initial_value(btf, var(9, b"\x01"), "bool") is True
    assert initial_value(btf, var(4, b"hello".ljust(16, b"\0")), "char[16]") == "hello"
    assert initial_value(btf, var(4, b"hi\0junk".ljust(16, b"\0")), "char[16]") is None
    assert initial_value(btf, var(4, b"x" * 16), "char[16]") is None  # no terminator


def test_initial_values_upstream_would_refuse_or_garble_are_left_out():
    btf = sample_btf()
    assert initial_value(btf, var(11, (7).to_bytes(4, "little")), "u32") is None  # "u32": not a type it parses
    assert initial_value(btf, var(12, b"\x00\x00\xc0\x3f"), "float") is None  # written byte-swapped there
    assert initial_value(btf, var(13, (1).to_bytes(4, "little")), "enum color") is None


def test_struct_used_inside_another_goes_after_it():
    btf = sample_btf()
    assert order_exports(btf, ["point", "event", "other"]) == ["event", "other", "point"]
    assert order_exports(btf, ["other", "event"]) == ["other", "event"]


def test_sorted_keys_all_the_way_down():
    value = sorted_keys({"b": [{"z": 1, "a": 2}], "a": {"y": 0, "x": 1}})
    assert list(value) == ["a", "b"]
    assert list(value["a"]) == ["x", "y"] and list(value["b"][0]) == ["a", "z"]
