"""Symbol tables for stack traces: a sorted table looked up by bisection,
built from /proc/kallsyms text or from an ELF file's .symtab and .dynsym;
and /proc/PID/maps lines.

Pure: bytes and text in, tables out. The ELF reader takes a `read(offset,
size)` callable instead of the file's bytes, so a 100 MB binary costs only
its headers, notes and symbol sections (libc.so.6: 111 KiB read of 1.9 MiB,
2200 functions, 13-17 ms). Every offset and count is bounded: a corrupt
file gives an ELFError, never an IndexError or a huge allocation.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import NamedTuple

from .elf import ELFError

ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_NOTE = 1, 4
SHT_SYMTAB, SHT_STRTAB, SHT_NOTE, SHT_DYNSYM = 2, 3, 7, 11  # sections are found by type: no name table read
STT_FUNC, STT_GNU_IFUNC = 2, 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
NT_GNU_BUILD_ID = 3
MAX_HEADERS = 1 << 16  # program or section headers: real files have tens
MAX_SYMBOLS = 1 << 22  # 4 Mi symbols (a large C++ binary has about 1 Mi)
MAX_STRINGS = 256 << 20  # a symbol string table (a large C++ binary's: about 60 MiB)
MAX_NOTES = 1 << 16  # bytes of notes read when looking for the build id
MAX_NAME = 4096

Reader = Callable[[int, int], bytes]


class Symbol(NamedTuple):
    """Where an address falls: the symbol's name and the offset into it."""

    name: str
    offset: int


class SymbolTable:
    """Symbols sorted by address. `lookup(address)` is one bisection: the
    symbol that starts at or before it, if the address lies within its size
    (or, for a symbol without a size, before the next symbol)."""

    __slots__ = ("names", "sizes", "starts")

    def __init__(self, entries: Iterable[tuple[int, int, str]]):
        """`entries`: (start, size, name); at one address the first name wins
        (callers list the preferred binding first)."""
        ordered = sorted(entries, key=lambda e: e[0])  # stable: the first of aliases stays first
        self.starts = array("Q")
        self.sizes = array("Q")
        self.names: list[str] = []
        last = -1
        for start, size, name in ordered:
            if start == last:
                if size and not self.sizes[-1]:
                    self.sizes[-1] = size
                continue
            last = start
            self.starts.append(start)
            self.sizes.append(size)
            self.names.append(name)

    @classmethod
    def from_sorted(cls, starts: array[int], names: list[str]) -> SymbolTable:
        """A table of sizeless symbols already sorted by address; of equal
        addresses lookup finds the last."""
        table = cls(())
        table.starts, table.names = starts, names
        table.sizes = array("Q", bytes(8 * len(names)))
        return table

    def __len__(self) -> int:
        return len(self.names)

    def lookup(self, address: int) -> Symbol | None:
        i = bisect_right(self.starts, address) - 1
        if i < 0:
            return None
        offset = address - self.starts[i]
        size = self.sizes[i]
        if size and offset >= size:
            return None
        return Symbol(self.names[i], offset)


_KALLSYMS_TEXT = re.compile(r"^([0-9a-fA-F]+) [tTwW] (\S+)", re.MULTILINE)


def parse_kallsyms(text: str) -> SymbolTable:
    """/proc/kallsyms: `ffffffff81000000 T _stext` and `... t name\t[module]`.
    Only text symbols (t, T, w, W) are kept: stacks hold code addresses. All
    addresses zero (kptr_restrict, no CAP_SYSLOG) gives an empty table.

    Built without a per-line loop (one regex pass, the addresses through
    bytes.fromhex, a sort of indices): 122k text symbols of this 6.18
    kernel in 0.25-0.35 s on a loaded 2-CPU host, a third of it the regex."""
    found = _KALLSYMS_TEXT.findall(text)
    digits = "".join(map(itemgetter(0), found))
    if len(digits) != 16 * len(found):  # not all 64-bit addresses: the plain way
        return SymbolTable((address, 0, name) for address, name in ((int(a, 16), n) for a, n in found) if address)
    addresses = array("Q", bytes.fromhex(digits))
    if sys.byteorder == "little":
        addresses.byteswap()  # fromhex wrote each address most significant byte first
    if not any(addresses):
        return SymbolTable(())
    names = list(map(itemgetter(1), found))
    # stable, over reversed indices: of aliases at one address the first listed sorts last, where lookup looks
    order = sorted(range(len(names) - 1, -1, -1), key=addresses.__getitem__)
    return SymbolTable.from_sorted(array("Q", map(addresses.__getitem__, order)),
                                   list(map(names.__getitem__, order)))


class Mapping(NamedTuple):
    """One line of /proc/PID/maps with a file behind it."""

    start: int
    end: int
    offset: int
    inode: int
    path: str
    executable: bool


def parse_maps(text: str) -> list[Mapping]:
    """The file-backed mappings of /proc/PID/maps, in address order:
    `start-end perms offset dev inode path`. Anonymous and special mappings
    ([heap], [vdso]) are kept with inode 0 so an address in them is known to
    be there, not unmapped."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        try:
            lo, hi = parts[0].split("-", 1)
            start, end, offset, inode = int(lo, 16), int(hi, 16), int(parts[2], 16), int(parts[4])
        except ValueError:
            continue
        path = parts[5].strip() if len(parts) == 6 else ""
        out.append(Mapping(start, end, offset, inode, path, "x" in parts[1]))
    out.sort(key=lambda m: m.start)
    return out


class Segment(NamedTuple):
    offset: int
    vaddr: int
    filesz: int


class ElfSymbols(NamedTuple):
    """What symbolizing a mapped ELF file needs."""

    build_id: bytes
    segments: tuple[Segment, ...]  # PT_LOAD, to turn a file offset into a symbol address
    symbols: SymbolTable
    has_symtab: bool  # .symtab present (not only .dynsym): a stripped file has none

    def address_of(self, file_offset: int) -> int | None:
        """The link-time address of the byte at `file_offset`, as symbols
        give it; None when no loaded segment holds that offset."""
        for s in self.segments:
            if s.offset <= file_offset < s.offset + s.filesz:
                return file_offset - s.offset + s.vaddr
        return None


def _read(read: Reader, offset: int, size: int, what: str) -> bytes:
    data = read(offset, size) if size else b""
    if len(data) != size:
        raise ELFError(f"ELF {what} lies outside the file")
    return data


def elf_symbols(read: Reader, file_size: int,
                known: Callable[[bytes], ElfSymbols | None] | None = None) -> ElfSymbols:
    """Build id, loadable segments and function symbols (.symtab first,
    then .dynsym: at one address a .symtab name wins) of an ELF64 file.
    `known(build_id)` may return the symbols of a file with that build id
    read before: then no symbol table is read."""
    head = _read(read, 0, 64, "header") if file_size >= 64 else b""
    if len(head) < 64 or head[:4] != b"\x7fELF":
        raise ELFError("not an ELF file (bad magic)")
    if head[4] != 2 or head[5] not in (1, 2):
        raise ELFError("not a 64-bit ELF file of a known byte order")
    e = "<" if head[5] == 1 else ">"
    (etype,) = struct.unpack_from(e + "H", head, 16)
    if etype not in (ET_EXEC, ET_DYN):
        raise ELFError("ELF file is neither an executable nor a shared object")
    phoff, shoff = struct.unpack_from(e + "QQ", head, 32)
    phentsize, phnum, shentsize, shnum = struct.unpack_from(e + "HHHH", head, 54)
    segments, notes = _program_headers(read, e, phoff, phentsize, phnum, file_size)
    sections = _section_headers(read, e, shoff, shentsize, shnum, file_size)
    build_id = b""
    for off, size in notes + [(s[3], s[4]) for s in sections if s[0] == SHT_NOTE]:
        build_id = _build_id(_read(read, off, min(size, MAX_NOTES), "note"), e)
        if build_id:
            break
    same = known(build_id) if known is not None and build_id else None
    if same is not None:
        return same
    entries: list[tuple[int, int, str]] = []
    has_symtab = False
    for wanted in (SHT_SYMTAB, SHT_DYNSYM):
        for typ, link, entsize, off, size in sections:
            if typ != wanted:
                continue
            if link >= len(sections) or entsize < 24 or size // entsize > MAX_SYMBOLS:
                raise ELFError("ELF symbol table is malformed")
            has_symtab |= typ == SHT_SYMTAB and size > entsize  # more than the null symbol
            strtab = sections[link]
            if strtab[4] > MAX_STRINGS:
                raise ELFError(f"ELF string table of {strtab[4]} bytes is larger than {MAX_STRINGS >> 20} MiB")
            _symbols(_read(read, off, size, "symbol table"), entsize, e,
                     _read(read, strtab[3], strtab[4], "string table"), entries)
    return ElfSymbols(build_id, tuple(segments), SymbolTable(_sized(entries, segments)), has_symtab)


def _sized(entries: list[tuple[int, int, str]], segments: list[Segment]) -> list[tuple[int, int, str]]:
    """A symbol without a size (assembly without .size: _init, _fini) ends
    at the next symbol or the end of its segment, not at the next one past
    the code (a garbage frame pointer in .data would read `_fini+0x127610`)."""
    starts = sorted({e[0] for e in entries})
    out = []
    for start, size, name in entries:
        if not size:
            i = bisect_right(starts, start)
            end = starts[i] if i < len(starts) else start + 1
            for seg in segments:
                if seg.vaddr <= start < seg.vaddr + seg.filesz:
                    end = min(end, seg.vaddr + seg.filesz) if i < len(starts) else seg.vaddr + seg.filesz
            size = max(1, end - start)
        out.append((start, size, name))
    return out


def _program_headers(read: Reader, e: str, phoff: int, phentsize: int, phnum: int,
                     file_size: int) -> tuple[list[Segment], list[tuple[int, int]]]:
    if not phnum:
        return [], []
    if phnum > MAX_HEADERS or phentsize < 56 or phoff + phnum * phentsize > file_size:
        raise ELFError("ELF program headers are truncated")
    table = _read(read, phoff, phnum * phentsize, "program headers")
    segments, notes = [], []
    for i in range(phnum):
        ptype, _flags, off, vaddr, _paddr, filesz = struct.unpack_from(e + "IIQQQQ", table, i * phentsize)
        if ptype == PT_LOAD:
            segments.append(Segment(off, vaddr, filesz))
        elif ptype == PT_NOTE and off + filesz <= file_size:
            notes.append((off, filesz))
    return segments, notes


def _section_headers(read: Reader, e: str, shoff: int, shentsize: int, shnum: int,
                     file_size: int) -> list[tuple[int, int, int, int, int]]:
    """(type, link, entsize, offset, size) of each section, bounded by the file."""
    if not shnum or not shoff:
        return []
    if shnum > MAX_HEADERS or shentsize < 64 or shoff + shnum * shentsize > file_size:
        raise ELFError("ELF section headers are truncated")
    table = _read(read, shoff, shnum * shentsize, "section headers")
    out = []
    for i in range(shnum):
        _name, typ, _flags, _addr, off, size, link, _info, _align, entsize = struct.unpack_from(
            e + "IIQQQQIIQQ", table, i * shentsize)
        if typ in (SHT_SYMTAB, SHT_DYNSYM, SHT_NOTE, SHT_STRTAB) and off + size > file_size:
            raise ELFError(f"ELF section {i} lies outside the file")
        out.append((typ, link, entsize, off, size))
    return out


def _build_id(notes: bytes, e: str) -> bytes:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from(e + "III", notes, pos)
        name_at = pos + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        end = desc_at + ((descsz + 3) & ~3)
        if end > len(notes) or end <= pos:
            break
        if ntype == NT_GNU_BUILD_ID and notes[name_at:name_at + namesz] == b"GNU\0":
            return notes[desc_at:desc_at + descsz]
        pos = end
    return b""


def _symbols(table: bytes, entsize: int, e: str, strings: bytes, out: list[tuple[int, int, str]]) -> None:
    unpack = struct.Struct(e + "IBBHQQ").unpack_from
    globals_first: list[tuple[int, int, str]] = []
    locals_: list[tuple[int, int, str]] = []
    for off in range(0, len(table) - 23, entsize):
        name_off, info, _other, shndx, value, size = unpack(table, off)
        if info & 0xF not in (STT_FUNC, STT_GNU_IFUNC) or not shndx or not value or name_off >= len(strings):
            continue
        end = strings.find(b"\0", name_off, name_off + MAX_NAME)
        if end <= name_off:
            continue
        name = strings[name_off:end].decode("utf-8", "replace")
        (locals_ if info >> 4 == STB_LOCAL else globals_first).append((value, size, name))
    out.extend(globals_first)  # a global name beats a local alias at one address
    out.extend(locals_)
