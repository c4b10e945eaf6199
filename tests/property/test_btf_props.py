"""btf.Btf.parse and the queries on its types, over arbitrary and mutated BTF."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pyeunomia.format.btf import Btf, BTFError, Kind
from pyeunomia.format.layout import struct_layout
from tests.btfbuilder import ENC_SIGNED, BtfBuilder
from tests.fuzz.checks import check_btf_bytes
from tests.fuzz.contract import raises_ours

from .strategies import BTF_FIELDS, EDGES, UPSTREAM, BuiltBtf, btf_blobs, upstream_object


def upstream_btf(name: str) -> bytes:
    from pyeunomia.format.elf import ElfFile

    elf = ElfFile(upstream_object(name))
    section = elf.section(".BTF")
    assert section is not None
    return elf.section_bytes(section)


@given(st.binary(max_size=600))
def test_any_bytes(data: bytes) -> None:
    check_btf_bytes(data)


@given(st.sampled_from("<>"), st.binary(max_size=400), st.integers(0, 400))
def test_valid_header_then_anything(endian: str, rest: bytes, split: int) -> None:
    split = min(split, len(rest))
    header = struct.pack(endian + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, split, split, len(rest) - split)
    check_btf_bytes(header + rest)


@given(btf_blobs())
def test_random_types(built: BuiltBtf) -> None:
    check_btf_bytes(built.blob)


@given(btf_blobs(corrupt_header=False))
def test_parsed_types_are_the_ones_built(built: BuiltBtf) -> None:
    """When a blob parses, it has exactly the types that were written."""
    try:
        btf = Btf.parse(built.blob)
    except BTFError:
        return
    assert len(btf) == built.count + 1
    assert btf[0].kind == Kind.VOID


@settings(max_examples=40)
@given(st.sampled_from(UPSTREAM), st.data())
def test_mutated_upstream_btf(name: str, data: st.DataObject) -> None:
    blob = bytearray(upstream_btf(name))
    how = data.draw(st.sampled_from(["field", "flip", "truncate", "garbage"]))
    if how == "field":
        off, fmt = BTF_FIELDS[data.draw(st.sampled_from(sorted(BTF_FIELDS)))]
        struct.pack_into("<" + fmt, blob, off, data.draw(st.sampled_from(EDGES)) & (0xFF if fmt == "B" else 0xFFFFFFFF))
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 6))):
            blob[data.draw(st.integers(24, len(blob) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        del blob[data.draw(st.integers(0, len(blob) - 1)):]
    else:
        at = data.draw(st.integers(24, len(blob) - 1))
        junk = data.draw(st.binary(min_size=1, max_size=64))
        blob[at:at + len(junk)] = junk
    check_btf_bytes(bytes(blob))


@given(st.sampled_from("<>"), st.integers(1, 70))
def test_long_chains_end(endian: str, depth: int) -> None:
    """Typedef and pointer chains: nesting beyond the limit is a BTFError, not a RecursionError."""
    b = BtfBuilder(endian)
    t = b.int("int", 4, ENC_SIGNED)
    for i in range(depth):
        t = b.typedef(f"t{i}", t) if i % 3 else b.ptr(t)
    try:
        btf = Btf.parse(b.build())
    except BTFError:
        return
    btf.c_name(t)
    btf.size_of(t)


def test_self_reference_is_refused() -> None:
    b = BtfBuilder()
    b.typedef("loop", 1)
    assert "loop" in raises_ours(lambda: Btf.parse(b.build()))


CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "btf"


def refusal(name: str, type_name: str = "event") -> str:
    btf = Btf.parse((CORPUS / name).read_bytes())
    found = btf.find(type_name, Kind.STRUCT) or btf.types[-1]
    return raises_ours(lambda: struct_layout(btf, found.id))


def test_names_that_never_end_are_refused() -> None:
    assert raises_ours(lambda: Btf.parse((CORPUS / "names-into-one-long-run").read_bytes())) == \
        "BTF string is longer than 4095 bytes"


def test_member_beyond_its_struct_is_refused() -> None:
    assert "member beyond its 4 bytes" in refusal("member-beyond-struct")
    assert "beyond" in refusal("array-size-beyond-struct-format")


def test_exponential_unions_are_refused() -> None:
    assert "decodes into more than" in refusal("nested-unions-2pow60-paths")
    assert "more than 65536 members" in refusal("anonymous-unions-2pow60-members")
