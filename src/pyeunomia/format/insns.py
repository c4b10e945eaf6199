"""Which kernel helpers a program calls, read from its instructions: what
the attach policy asks the kernel about before choosing between a program and
its `__compat` alternative (runner/attach.py). Pure.

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

from .elf import STT_FUNC
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


def program_helpers(spec: ObjectSpec, program: ProgramSpec) -> frozenset[int]:
    """The helper ids `program` may call, itself or through subprograms."""
    elf = spec.elf
    section = elf.section(program.section)
    if section is None:
        return frozenset()
    data = elf.section_bytes(section)
    big = elf.endian == ">"
    code = data
    for sym in elf.symbols():
        if sym.name == program.name and sym.type == STT_FUNC and elf.sections[sym.section_index] is section:
            code = data[sym.value : sym.value + sym.size] if sym.size else data[sym.value :]
            break
    helpers, subprogs = _calls(code, big)
    if subprogs:
        text = elf.section(".text")
        if text is not None:
            helpers |= _calls(elf.section_bytes(text), big)[0]
    return frozenset(helpers)
