"""pyeunomia.format.elf: sections, symbols, and refusal of malformed objects."""

from __future__ import annotations

import base64
import json
import random
import struct
import zlib
from pathlib import Path

import pytest

from pyeunomia.errors import PackageError
from pyeunomia.format.elf import SHT_NOBITS, SHT_PROGBITS, SHT_STRTAB, SHT_SYMTAB, ELFError, ElfFile, Section, Symbol
from tests.btfbuilder import (
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHF_WRITE,
    STB_GLOBAL,
    STB_LOCAL,
    STT_FUNC,
    STT_OBJECT,
    ElfBuilder,
)

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def upstream_object(name: str) -> bytes:
    doc = json.loads((UPSTREAM / f"{name}.json").read_text())
    return zlib.decompress(base64.b64decode(doc["bpf_object"]))


def small_object(endian: str = "<") -> bytes:
    b = ElfBuilder(endian)
    b.section(".text", b"", flags=SHF_ALLOC | SHF_EXECINSTR)
    b.section("kprobe/do_sys_open", b"\x95" + bytes(7), flags=SHF_ALLOC | SHF_EXECINSTR)
    b.section(".data", b"\x01\x02\x03\x04", flags=SHF_ALLOC | SHF_WRITE)
    b.section(".bss", type=SHT_NOBITS, flags=SHF_ALLOC | SHF_WRITE, size=12)
    b.symbol("prog", 2, 0, 8, STB_GLOBAL, STT_FUNC)
    b.symbol("counter", 3, 0, 4, STB_GLOBAL, STT_OBJECT)
    b.symbol("hidden", 4, 8, 4, STB_LOCAL, STT_OBJECT)
    return b.build()


# -- well-formed objects ------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
def test_sections_of_a_built_object(endian):
    elf = ElfFile(small_object(endian))
    assert elf.endian == endian
    assert elf.machine == 247
    assert [s.name for s in elf.sections] == [
        "", ".text", "kprobe/do_sys_open", ".data", ".bss", ".symtab", ".strtab", ".shstrtab"]
    assert [s.index for s in elf.sections] == list(range(8))
    assert [s.type for s in elf.sections] == [0, SHT_PROGBITS, SHT_PROGBITS, SHT_PROGBITS, SHT_NOBITS,
                                              SHT_SYMTAB, SHT_STRTAB, SHT_STRTAB]
    prog = elf.section("kprobe/do_sys_open")
    assert prog is not None
    assert prog.flags == SHF_ALLOC | SHF_EXECINSTR
    assert prog.size == 8
    assert elf.section_bytes(prog) == b"\x95" + bytes(7)
    data = elf.section(".data")
    assert data is not None
    assert elf.section_bytes(data) == b"\x01\x02\x03\x04"
    symtab = elf.section(".symtab")
    assert symtab is not None
    assert (symtab.link, symtab.info, symtab.entsize, symtab.size) == (6, 2, 24, 96)
    assert elf.section("missing") is None


def test_nobits_section_reads_as_zeros():
    elf = ElfFile(small_object())
    bss = elf.section(".bss")
    assert bss is not None
    assert (bss.type, bss.size) == (SHT_NOBITS, 12)
    assert elf.section_bytes(bss) == bytes(12)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_symbols_of_a_built_object(endian):
    assert ElfFile(small_object(endian)).symbols() == [
        Symbol("", 0, 0, 0, 0, 0),
        Symbol("prog", 0, 8, 2, 1, 2),
        Symbol("counter", 0, 4, 3, 1, 1),
        Symbol("hidden", 8, 4, 4, 0, 1),
    ]


def test_object_without_symbol_table_has_no_symbols():
    b = ElfBuilder()
    b.section(".data", b"x")
    assert ElfFile(b.build()).symbols() == []


def test_upstream_bootstrap_sections_match_readelf():
    elf = ElfFile(upstream_object("bootstrap"))
    # as `readelf -SW` shows them
    assert [(s.name, s.type, s.offset, s.size) for s in elf.sections] == [
        ("", 0, 0, 0),
        (".strtab", 3, 46134, 273),
        (".text", 1, 64, 0),
        ("tp/sched/sched_process_exec", 1, 64, 504),
        (".reltp/sched/sched_process_exec", 9, 44640, 48),
        ("tp/sched/sched_process_exit", 1, 568, 680),
        (".reltp/sched/sched_process_exit", 9, 44688, 80),
        ("license", 1, 1248, 13),
        (".rodata", 1, 1264, 8),
        (".maps", 1, 1272, 48),
        (".bss", 8, 1320, 8),
        (".BTF", 1, 1320, 41599),
        (".rel.BTF", 9, 44768, 80),
        (".BTF.ext", 1, 42920, 1356),
        (".rel.BTF.ext", 9, 44848, 1280),
        (".llvm_addrsig", 0x6FFF4C03, 46128, 6),
        (".symtab", 2, 44280, 360),
    ]
    license_ = elf.section("license")
    assert license_ is not None
    assert elf.section_bytes(license_) == b"Dual BSD/GPL\0"
    assert elf.section(".text") == Section(2, ".text", 1, 6, 64, 0, 0, 0, 0)


def test_upstream_bootstrap_symbols_match_readelf():
    syms = ElfFile(upstream_object("bootstrap")).symbols()
    assert len(syms) == 15
    named = [(s.name, s.value, s.size, s.section_index, s.binding, s.type) for s in syms if s.type in (1, 2)]
    assert named == [
        ("handle_exec", 0, 504, 3, 1, 2),
        ("exec_start", 0, 32, 9, 1, 1),
        ("min_duration_ns", 0, 8, 8, 1, 1),
        ("rb", 32, 16, 9, 1, 1),
        ("handle_exit", 0, 680, 5, 1, 2),
        ("LICENSE", 0, 13, 7, 1, 1),
        ("__eunomia_dummy_event_ptr", 0, 8, 10, 1, 1),
    ]
    assert syms[1] == Symbol("", 0, 0, 3, 0, 3)  # STT_SECTION: readelf shows the section name


def test_upstream_runqlat_static_symbol():
    syms = {s.name: s for s in ElfFile(upstream_object("runqlat")).symbols()}
    assert syms["zero"] == Symbol("zero", 8, 120, 12, 0, 1)
    assert syms["targ_tgid"] == Symbol("targ_tgid", 8, 4, 9, 1, 1)


# -- malformed objects --------------------------------------------------------


def patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def section_header_offset(data: bytes, index: int) -> int:
    (shoff,) = struct.unpack_from("<Q", data, 40)
    return shoff + 64 * index


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not an ELF object (bad magic)"),
    (b"\x7fELF" + bytes(59), "not an ELF object (bad magic)"),
    (b"MZ\x90\x00" + bytes(60), "not an ELF object (bad magic)"),
    (b"\x7fELF\x01\x01\x01" + bytes(57), "not a 64-bit ELF object"),
    (b"\x7fELF\x02\x03\x01" + bytes(57), "ELF object has an unknown byte order"),
    (b"\x7fELF\x02\x01\x01" + bytes(57), "ELF section header table is truncated"),
])
def test_bad_headers(data, message):
    with pytest.raises(ELFError) as err:
        ElfFile(data)
    assert str(err.value) == message


def test_elf_error_is_a_package_error():
    assert issubclass(ELFError, PackageError)


def test_section_table_past_the_end():
    data = small_object()
    with pytest.raises(ELFError, match=r"^ELF section header table is truncated$"):
        ElfFile(patched(data, 40, "<Q", len(data) - 64))


def test_truncated_file():
    data = small_object()
    with pytest.raises(ELFError, match=r"^ELF section header table is truncated$"):
        ElfFile(data[:-1])


def test_small_section_entry_size():
    with pytest.raises(ELFError, match=r"^ELF section header table is truncated$"):
        ElfFile(patched(small_object(), 58, "<H", 40))


def test_zero_sections():
    with pytest.raises(ELFError, match=r"^ELF section header table is truncated$"):
        ElfFile(patched(small_object(), 60, "<H", 0))


def test_section_name_table_index_out_of_range():
    with pytest.raises(ELFError, match=r"^ELF section name table index is out of range$"):
        ElfFile(patched(small_object(), 62, "<H", 8))


def test_section_contents_outside_the_file():
    data = small_object()
    at = section_header_offset(data, 3)  # .data
    with pytest.raises(ELFError, match=r"^ELF section 3 lies outside the file$"):
        ElfFile(patched(data, at + 32, "<Q", 1 << 40))
    with pytest.raises(ELFError, match=r"^ELF section 3 lies outside the file$"):
        ElfFile(patched(data, at + 24, "<Q", len(data)))


def test_section_names_outside_the_file():
    data = small_object()
    at = section_header_offset(data, 7)  # .shstrtab
    with pytest.raises(ELFError, match=r"^ELF section names lies outside the file$"):
        ElfFile(patched(data, at + 24, "<Q", len(data) - 2))


def test_section_name_offset_out_of_range():
    data = small_object()
    at = section_header_offset(data, 2)
    with pytest.raises(ELFError, match=r"^ELF string offset is out of range$"):
        ElfFile(patched(data, at, "<I", 10_000))


def test_section_name_not_terminated():
    data = small_object()
    at = section_header_offset(data, 7)  # .shstrtab: drop its final NUL
    (size,) = struct.unpack_from("<Q", data, at + 32)
    with pytest.raises(ELFError, match=r"^ELF string is not terminated$"):
        ElfFile(patched(data, at + 32, "<Q", size - 1))


def test_nobits_size_is_not_bounded_by_the_file_but_reads_as_zeros():
    data = small_object()
    at = section_header_offset(data, 4)  # .bss
    elf = ElfFile(patched(data, at + 32, "<Q", 4096))
    bss = elf.section(".bss")
    assert bss is not None
    assert elf.section_bytes(bss) == bytes(4096)


def test_huge_nobits_section_is_refused_not_allocated():
    # The module promises an ELFError instead of a huge allocation.
    data = small_object()
    at = section_header_offset(data, 4)  # .bss
    elf = ElfFile(patched(data, at + 32, "<Q", 1 << 62))
    bss = elf.section(".bss")
    assert bss is not None
    with pytest.raises(ELFError, match=r"^ELF section \.bss claims 4611686018427387904 bytes"):
        elf.section_bytes(bss)


def test_symbol_table_with_bad_link():
    data = small_object()
    at = section_header_offset(data, 5)  # .symtab
    elf = ElfFile(patched(data, at + 40, "<I", 99))
    with pytest.raises(ELFError, match=r"^ELF symbol table is malformed$"):
        elf.symbols()


def test_symbol_table_with_small_entries():
    data = small_object()
    at = section_header_offset(data, 5)
    elf = ElfFile(patched(data, at + 56, "<Q", 16))
    with pytest.raises(ELFError, match=r"^ELF symbol table is malformed$"):
        elf.symbols()


def test_symbol_name_out_of_range():
    data = small_object()
    at = section_header_offset(data, 5)
    (symoff,) = struct.unpack_from("<Q", data, at + 24)
    elf = ElfFile(patched(data, symoff + 24, "<I", 5000))  # symbol 1's st_name
    with pytest.raises(ELFError, match=r"^ELF string offset is out of range$"):
        elf.symbols()


def test_partial_trailing_symbol_is_ignored():
    data = small_object()
    at = section_header_offset(data, 5)
    elf = ElfFile(patched(data, at + 32, "<Q", 96 - 1))
    assert [s.name for s in elf.symbols()] == ["", "prog", "counter"]


def test_invalid_utf8_names_are_replaced():
    b = ElfBuilder()
    b.section("sec", b"")
    data = b.build().replace(b"sec\0", b"s\xffc\0")
    assert ElfFile(data).sections[1].name == "s\ufffdc"


def test_random_corruption_gives_elf_errors_only():
    rng = random.Random(1)
    base = upstream_object("bootstrap")
    (shoff,) = struct.unpack_from("<Q", base, 40)
    hot = list(range(64)) + list(range(shoff, len(base)))  # the headers
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.choice(hot)] = rng.randrange(256)
        try:
            elf = ElfFile(bytes(data))
            elf.symbols()
            for s in elf.sections:
                elf.section_bytes(s)
        except ELFError:
            pass
