"""A minimal reader of ELF64 relocatable objects, the container of BPF programs.

Only what a BPF loader needs: sections by name, their bytes, and the symbol
table. Every offset is bounds-checked, so a corrupted object gives an ELFError
instead of an IndexError or a huge allocation.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import PackageError
from .record import Record

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHF_EXECINSTR = 0x4
STT_OBJECT = 1
STT_FUNC = 2
STB_LOCAL = 0
STB_GLOBAL = 1
EM_BPF = 247
# A .bss-like section has no bytes in the file, only a size; reading it
# allocates that many zeros, so cap it (the kernel refuses far smaller maps).
MAX_NOBITS_SIZE = 64 << 20
# The longest name read from a string table: SEC() names hold paths (PATH_MAX).
MAX_NAME_LEN = 4096


class ELFError(PackageError):
    """The object is not a well-formed ELF64 file."""


class NameTable:
    """The NUL-terminated names of one string table (ELF or BTF), each decoded
    once. A name runs at most MAX_NAME_LEN bytes and the names read add up to
    at most twice the table (names may share tails) plus one name, so names
    that all overlap cannot make time or memory grow faster than the input."""

    def __init__(self, table: bytes, error: type[PackageError], what: str):
        self.table = table
        self.error = error
        self.what = what
        self.names: dict[int, str] = {}
        self.left = 2 * len(table) + MAX_NAME_LEN

    def __call__(self, offset: int) -> str:
        name = self.names.get(offset)
        if name is None:
            end = self.table.find(b"\0", offset, offset + MAX_NAME_LEN)
            if end < 0:
                if offset + MAX_NAME_LEN < len(self.table):
                    raise self.error(f"{self.what} string is longer than {MAX_NAME_LEN - 1} bytes")
                raise self.error(f"{self.what} string is not terminated")
            self.left -= end - offset
            if self.left < 0:
                raise self.error(f"{self.what} names overlap in their string table more than a compiler writes them")
            name = self.names[offset] = self.table[offset:end].decode("utf-8", "replace")
        return name


class Section(Record):
    __slots__ = ("entsize", "flags", "index", "info", "link", "name", "offset", "size", "type")

    def __init__(self, index: int, name: str, type: int, flags: int, offset: int,
                 size: int, link: int, info: int, entsize: int):
        self.index, self.name, self.type, self.flags = index, name, type, flags
        self.offset, self.size, self.link, self.info, self.entsize = offset, size, link, info, entsize


class Symbol(NamedTuple):
    name: str
    value: int
    size: int
    section_index: int
    binding: int
    type: int


class ElfFile:
    """Sections and symbols of one ELF64 object held in memory."""

    def __init__(self, data: bytes):
        self.data = data
        self._symbols: list[Symbol] | None = None
        if len(data) < 64 or data[:4] != b"\x7fELF":
            raise ELFError("not an ELF object (bad magic)")
        if data[4] != 2:
            raise ELFError("not a 64-bit ELF object")
        if data[5] not in (1, 2):
            raise ELFError("ELF object has an unknown byte order")
        self.endian = "<" if data[5] == 1 else ">"
        e = self.endian
        (self.machine,) = struct.unpack_from(e + "H", data, 18)
        shoff, = struct.unpack_from(e + "Q", data, 40)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 58)
        if shnum == 0 or shentsize < 64 or shoff + shnum * shentsize > len(data):
            raise ELFError("ELF section header table is truncated")
        raw = []
        for i in range(shnum):
            raw.append(struct.unpack_from(e + "IIQQQQIIQQ", data, shoff + i * shentsize))
        if shstrndx >= shnum:
            raise ELFError("ELF section name table index is out of range")
        names = NameTable(self._bounded(raw[shstrndx][4], raw[shstrndx][5], "section names"), ELFError, "ELF")
        self.sections: list[Section] = []
        for i, (name_off, typ, flags, _addr, off, size, link, info, _align, entsize) in enumerate(raw):
            if typ != SHT_NOBITS:
                self._bounded(off, size, f"section {i}")
            self.sections.append(
                Section(i, _cstring(names, name_off), typ, flags, off, size, link, info, entsize)
            )
        self._by_name = {s.name: s for s in self.sections}

    def _bounded(self, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise ELFError(f"ELF {what} lies outside the file")
        return self.data[offset : offset + size]

    def section(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def section_bytes(self, section: Section) -> bytes:
        """The section's contents; zeros for .bss-like sections without file bytes."""
        if section.type == SHT_NOBITS:
            if section.size > MAX_NOBITS_SIZE:
                raise ELFError(f"ELF section {section.name} claims {section.size} bytes: "
                               f"more than {MAX_NOBITS_SIZE >> 20} MiB")
            return bytes(section.size)
        return self._bounded(section.offset, section.size, f"section {section.name}")

    def symbols(self) -> list[Symbol]:
        """The symbol table, parsed once: objspec, insns, mapuse and bufsizes
        each look up programs and maps in it (opensnoop's 12 programs parsed
        its 900 symbols 34 times at every start). Shared: read it, do not change it."""
        if self._symbols is None:
            self._symbols = self._parse_symbols()
        return self._symbols

    def _parse_symbols(self) -> list[Symbol]:
        symtab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
        if symtab is None:
            return []
        if symtab.link >= len(self.sections) or symtab.entsize < 24:
            raise ELFError("ELF symbol table is malformed")
        strings = NameTable(self.section_bytes(self.sections[symtab.link]), ELFError, "ELF")
        table = self.section_bytes(symtab)
        out = []
        for off in range(0, len(table) - 23, symtab.entsize):
            name_off, info, _other, shndx, value, size = struct.unpack_from(
                self.endian + "IBBHQQ", table, off
            )
            out.append(Symbol(_cstring(strings, name_off), value, size, shndx, info >> 4, info & 0xF))
        return out


def _cstring(names: NameTable, offset: int) -> str:
    if offset >= len(names.table):
        raise ELFError("ELF string offset is out of range")
    return names(offset)
