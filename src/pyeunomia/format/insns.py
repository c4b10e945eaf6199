"""Which kernel helpers a program calls, read from its instructions: what
the attach policy asks the kernel about before choosing between a program and
its `__compat` alternative (runner/attach.py), and which maps it uses (a map
only programs left unloaded use is not created). Pure.

A BPF instruction is 8 bytes: opcode, dst/src registers (4 bits each), a
16-bit offset and a 32-bit immediate. A helper call is opcode 0x85 with
src 0 and the helper's id in imm; src 1 is a call to a subprogram, src 2 a
kfunc. Subprograms (static functions not inlined) live in .text; which of
them a program reaches is only known from relocations, so a program that
calls any counts every helper .text calls: an over-estimate, which can only
make the policy prefer a compat alternative that also works.
"""

from __future__ import annotations

import struct

from .elf import STT_FUNC, ElfFile, Section
from .objspec import ObjectSpec, ProgramSpec

CALL = 0x85
SRC_HELPER, SRC_SUBPROG = 0, 1
_INSN = struct.Struct("<BBhi")
_INSN_BE = struct.Struct(">BBhi")


def _calls(code: bytes, big_endian: bool) -> tuple[set[int], bool]:
    """(helper ids, calls a subprogram?) of the instructions in `code`."""
    helpers: set[int] = set()
    subprogs = False
    unpack = (_INSN_BE if big_endian else _INSN).iter_unpack
    for opcode, regs, _off, imm in unpack(code[: len(code) - len(code) % 8]):
        if opcode != CALL:
            continue
        src = (regs & 0x0F) if big_endian else regs >> 4
        if src == SRC_HELPER:
            helpers.add(imm)
        elif src == SRC_SUBPROG:
            subprogs = True
    return helpers, subprogs


def _extent(elf: ElfFile, program: ProgramSpec) -> tuple[Section, int, int] | None:
    """(section, start, end) of the program's instructions."""
    section = elf.section(program.section)
    if section is None:
        return None
    for sym in elf.symbols():
        if sym.name == program.name and sym.type == STT_FUNC and elf.sections[sym.section_index] is section:
            return section, sym.value, sym.value + sym.size if sym.size else section.size
    return section, 0, section.size


def program_helpers(spec: ObjectSpec, program: ProgramSpec) -> frozenset[int]:
    """The helper ids `program` may call, itself or through subprograms."""
    elf = spec.elf
    extent = _extent(elf, program)
    if extent is None:
        return frozenset()
    section, start, end = extent
    big = elf.endian == ">"
    helpers, subprogs = _calls(elf.section_bytes(section)[start:end], big)
    if subprogs:
        text = elf.section(".text")
        if text is not None:
            helpers |= _calls(elf.section_bytes(text), big)[0]
    return frozenset(helpers)


SHT_REL = 9
_REL = struct.Struct("<QQ")
_REL_BE = struct.Struct(">QQ")


def program_maps(spec: ObjectSpec, program: ProgramSpec) -> frozenset[str]:
    """The BTF-defined maps (.maps) `program` refers to, itself or through
    subprograms: read from the relocations of its instructions (the loader
    patches a map's fd in where one points at a .maps symbol). A program
    that calls a subprogram counts every map .text refers to, an
    over-estimate that only keeps a map created."""
    elf = spec.elf
    extent = _extent(elf, program)
    if extent is None:
        return frozenset()
    section, start, end = extent
    symbols = elf.symbols()
    maps = elf.section(".maps")
    text = elf.section(".text")
    rel = _REL_BE if elf.endian == ">" else _REL
    found: set[str] = set()
    calls_subprog = _calls(elf.section_bytes(section)[start:end], elf.endian == ">")[1]
    for r in elf.sections:
        if r.type != SHT_REL or r.info >= len(elf.sections):
            continue
        target = elf.sections[r.info]
        whole = text is not None and target is text and calls_subprog
        if target is not section and not whole:
            continue
        data = elf.section_bytes(r)
        for offset, info in rel.iter_unpack(data[: len(data) - len(data) % 16]):
            if not whole and not start <= offset < end:
                continue
            index = info >> 32
            if index < len(symbols) and maps is not None and symbols[index].section_index == maps.index:
                found.add(symbols[index].name)
    return frozenset(found)
