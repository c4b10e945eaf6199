"""The BTF encoder, checked against the parser: encode, parse, compare."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from pyeunomia.compiler.btfwrite import BtfBlob, StringTable, encode_btf
from pyeunomia.format.btf import Btf, BTFError, BtfType, Kind, Member, SectionVar
from pyeunomia.format.elf import ElfFile

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def every_kind() -> list[BtfType]:
    """One type of each kind the encoder writes; ids follow list positions."""
    return [
        BtfType(0, Kind.VOID, "void"),
        BtfType(1, Kind.INT, "int", size=4, encoding=1, bits=32),
        BtfType(2, Kind.INT, "__ARRAY_SIZE_TYPE__", size=4, bits=32),
        BtfType(3, Kind.PTR, "", type_id=12),
        BtfType(4, Kind.ARRAY, "", elem_id=1, count=7),
        BtfType(5, Kind.STRUCT, "pair", size=8, members=[Member("a", 1, 0), Member("b", 1, 32)]),
        BtfType(6, Kind.STRUCT, "bits", size=4, members=[Member("lo", 1, 0, 3), Member("hi", 1, 3, 29)]),
        BtfType(7, Kind.UNION, "either", size=4, members=[Member("i", 1, 0), Member("", 5, 0)]),
        BtfType(8, Kind.ENUM, "sgn", size=4, enumerators=[("NEG", -2), ("POS", 7)], signed=True),
        BtfType(9, Kind.ENUM, "uns", size=4, enumerators=[("ALL", 0xFFFFFFFF)]),
        BtfType(10, Kind.ENUM64, "big", size=8, enumerators=[("MIN", -(1 << 63)), ("M1", -1)], signed=True),
        BtfType(11, Kind.ENUM64, "ubig", size=8, enumerators=[("HUGE", 1 << 63)]),
        BtfType(12, Kind.FWD, "later", fwd_union=True),
        BtfType(13, Kind.TYPEDEF, "u32_t", type_id=1),
        BtfType(14, Kind.VOLATILE, "", type_id=1),
        BtfType(15, Kind.CONST, "", type_id=14),
        BtfType(16, Kind.RESTRICT, "", type_id=3),
        BtfType(17, Kind.FUNC_PROTO, "", type_id=1, params=[("ctx", 3), ("", 0)]),
        BtfType(18, Kind.FUNC, "handler", type_id=17),
        BtfType(19, Kind.VAR, "counter", type_id=15, linkage=1),
        BtfType(20, Kind.DATASEC, ".data", size=8, vars=[SectionVar(19, 4, 4)]),
        BtfType(21, Kind.FLOAT, "double", size=8),
        BtfType(22, Kind.DECL_TAG, "kfunc", type_id=18),
        BtfType(23, Kind.TYPE_TAG, "user", type_id=1),
    ]


@pytest.mark.parametrize("endian", ["<", ">"])
def test_every_kind_round_trips(endian):
    types = every_kind()
    parsed = Btf.parse(encode_btf(types, endian, array_index_id=2))
    assert parsed.endian == endian
    assert parsed.types == types


@pytest.mark.parametrize("name", ["bootstrap", "runqlat"])
def test_real_btf_round_trips(name):
    """clang's own BTF (thousands of types from vmlinux.h) survives re-encoding."""
    doc = json.loads((UPSTREAM / f"{name}.json").read_text())
    elf = ElfFile(zlib.decompress(base64.b64decode(doc["bpf_object"])))
    section = elf.section(".BTF")
    assert section is not None
    original = Btf.parse(elf.section_bytes(section))
    index = original.find("__ARRAY_SIZE_TYPE__", Kind.INT)
    assert index is not None and len(original) > 100
    again = Btf.parse(encode_btf(original.types, array_index_id=index.id))
    assert again.types == original.types


def test_array_index_type_is_written():
    blob = encode_btf(every_kind(), array_index_id=2)
    # type section starts after the 24-byte header; ids 1..3 take 16+16+12 bytes
    array_record = blob[24 + 44 : 24 + 44 + 24]
    assert struct.unpack("<6I", array_record)[3:] == (1, 2, 7)


def test_string_table_reuses_and_appends():
    table = StringTable(b"\0int\0event\0")
    assert table.add("") == 0
    assert table.add("event") == 5
    assert table.add("pid") == 11
    assert table.add("pid") == 11
    assert bytes(table.data) == b"\0int\0event\0pid\0"
    with pytest.raises(BTFError):
        StringTable(b"x\0")


def test_extend_keeps_existing_bytes_and_ids():
    base = every_kind()
    blob = encode_btf(base, array_index_id=2)
    added = [BtfType(24, Kind.STRUCT, "event", size=16, members=[Member("when", 21, 0), Member("codes", 25, 64)]),
             BtfType(25, Kind.ARRAY, "", elem_id=1, count=2)]
    grown = BtfBlob(blob, "<").extend(added, array_index_id=2)
    type_len = struct.unpack_from("<I", blob, 12)[0]
    # the old type records are byte-for-byte where they were: relocations into them stay valid
    assert grown[: 8] == blob[: 8] and grown[24 : 24 + type_len] == blob[24 : 24 + type_len]
    # old strings keep their offsets, after the grown type section
    old_strings = blob[24 + type_len :]
    _type_len, new_str_off, new_str_len = struct.unpack_from("<III", grown, 12)
    assert grown[24 + new_str_off : 24 + new_str_off + len(old_strings)] == old_strings
    assert new_str_len == len(grown) - 24 - new_str_off
    parsed = Btf.parse(grown)
    assert parsed.types[:24] == base
    assert parsed.types[24:] == added


def test_extend_refuses_a_layout_it_cannot_keep():
    blob = bytearray(encode_btf(every_kind()))
    struct.pack_into("<I", blob, 8, 4)  # type_off != 0: types no longer right after the header
    with pytest.raises(BTFError, match="layout"):
        BtfBlob(bytes(blob), "<")
