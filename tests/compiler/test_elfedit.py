"""Replacing one section of an ELF object keeps everything else intact."""

from __future__ import annotations

import struct

import pytest

from pyeunomia.compiler.btfwrite import encode_btf
from pyeunomia.compiler.elfedit import replace_section
from pyeunomia.format.btf import BtfType, Kind
from pyeunomia.format.elf import ELFError, ElfFile
from tests.btfbuilder import STB_GLOBAL, bpf_object


def sample_object(endian: str = "<") -> bytes:
    btf = encode_btf([BtfType(0, Kind.VOID, "void"), BtfType(1, Kind.INT, "int", size=4, encoding=1, bits=32)],
                     endian)
    return bpf_object(btf, endian=endian, programs=[("handle", "tp/sched/sched_switch")],
                      data={".rodata": b"\x01\x02\x03\x04"}, bss_size=16,
                      symbols=[("knob", ".rodata", 0, 4, STB_GLOBAL)])


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("grow", [0, 3, 1000])
def test_only_the_named_section_changes(endian, grow):
    data = sample_object(endian)
    before = ElfFile(data)
    old_btf = before.section(".BTF")
    assert old_btf is not None
    new_content = before.section_bytes(old_btf) + b"\xaa" * grow
    after = ElfFile(replace_section(data, ".BTF", new_content))
    assert [s.name for s in after.sections] == [s.name for s in before.sections]
    for old, new in zip(before.sections, after.sections, strict=True):
        assert (new.type, new.flags, new.link, new.info, new.entsize) == (old.type, old.flags, old.link, old.info,
                                                                          old.entsize)
        if new.name == ".BTF":
            assert after.section_bytes(new) == new_content
        else:
            assert after.section_bytes(new) == before.section_bytes(old)
            assert new.size == old.size
    assert after.symbols() == before.symbols()


def test_alignment_of_following_sections_is_kept():
    data = sample_object()
    out = replace_section(data, ".BTF", b"\x01" * 5)  # an odd size before 8-aligned sections
    e = ElfFile(out)
    shoff = struct.unpack_from("<Q", out, 40)[0]
    for i, s in enumerate(e.sections):
        align = struct.unpack_from("<Q", out, shoff + i * 64 + 48)[0]
        if s.type != 8 and align > 1:
            assert s.offset % align == 0, s.name
    assert shoff % 8 == 0


def test_unknown_section_is_an_error():
    with pytest.raises(ELFError, match=r"no section \.nothing"):
        replace_section(sample_object(), ".nothing", b"")


def test_replacing_with_the_same_bytes_is_stable():
    def btf_of(obj: bytes) -> bytes:
        elf = ElfFile(obj)
        section = elf.section(".BTF")
        assert section is not None
        return elf.section_bytes(section)

    once = replace_section(sample_object(), ".BTF", btf_of(sample_object()))
    assert replace_section(once, ".BTF", btf_of(once)) == once
