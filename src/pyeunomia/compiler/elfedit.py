"""Rewrite one section of an ELF64 relocatable object, leaving the rest alone.

Used to swap in a grown `.BTF` section. Section contents keep their order in
the file and their alignment; only file offsets after the changed section move,
and the section header table is written after the last section. Indexes,
symbols and relocations refer to sections by index, so they stay valid.
"""

from __future__ import annotations

import struct

from ..format.elf import SHT_NOBITS, ELFError, ElfFile

SHT_NULL = 0
EHDR_SIZE = 64
SHDR = "IIQQQQIIQQ"  # name, type, flags, addr, offset, size, link, info, addralign, entsize


def _align(value: int, alignment: int) -> int:
    return value if alignment <= 1 else (value + alignment - 1) // alignment * alignment


def replace_section(data: bytes, name: str, content: bytes) -> bytes:
    """`data` with the contents of section `name` replaced by `content`."""
    elf = ElfFile(data)
    e = elf.endian
    (phnum,) = struct.unpack_from(e + "H", data, 56)
    if phnum:
        raise ELFError("cannot rewrite an ELF file with program headers (not a relocatable object)")
    target = elf.section(name)
    if target is None:
        raise ELFError(f"ELF object has no section {name}")
    (shoff,) = struct.unpack_from(e + "Q", data, 40)
    (shentsize,) = struct.unpack_from(e + "H", data, 58)
    headers = [list(struct.unpack_from(e + SHDR, data, shoff + i * shentsize)) for i in range(len(elf.sections))]
    contents = {s.index: elf.section_bytes(s) for s in elf.sections if s.type not in (SHT_NULL, SHT_NOBITS)}
    contents[target.index] = content

    out = bytearray(data[:EHDR_SIZE])
    in_file_order = sorted(contents, key=lambda i: (headers[i][4], i))
    for index in in_file_order:
        header = headers[index]
        offset = _align(len(out), max(header[8], 1))
        out += bytes(offset - len(out)) + contents[index]
        header[4], header[5] = offset, len(contents[index])
    for header in headers:
        if header[1] == SHT_NOBITS:
            header[4] = min(header[4], len(out))  # NOBITS has no bytes; keep its offset inside the file
    table = _align(len(out), 8)
    out += bytes(table - len(out))
    for header in headers:
        out += struct.pack(e + SHDR, *header)
    struct.pack_into(e + "Q", out, 40, table)
    struct.pack_into(e + "H", out, 58, struct.calcsize(e + SHDR))
    return bytes(out)
