"""What a program does with each of its maps, read from its instructions:
which maps hold results worth printing at exit, and which hold state kept
between two events (libbpf-tools' `start` maps) or scratch space for building
events. Pure.

A map reaches an instruction through a relocated 64-bit load (`r1 = map ll`),
and a value of the map through the pointer bpf_map_lookup_elem returns in r0.
One linear pass per code section follows those two kinds of pointer through
register moves, pointer arithmetic and stack spills, and records per map:

    lookup    bpf_map_lookup_elem (or _percpu_elem) on it
    update    bpf_map_update_elem on it
    delete    bpf_map_delete_elem on it
    inplace   a store, an atomic add or a helper writing through a pointer
              to one of its values (`__sync_fetch_and_add(&v->slots[i], 1)`)
    output    one of its values handed to perf_event_output or ringbuf_output

The pass ignores branches (a pointer known on one path is kept after the
join), and a map handed to a subprogram that is not inlined is not followed:
both are rare in libbpf-style code, and the worst outcome is one map printed
that need not be, or one not printed that `--all-maps` shows.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from typing import NamedTuple

from .elf import SHF_EXECINSTR
from .objspec import ObjectSpec

SHT_REL = 9
STT_SECTION = 3

# helper ids (include/uapi/linux/bpf.h)
LOOKUP, UPDATE, DELETE, PERF_EVENT_OUTPUT, RINGBUF_OUTPUT, LOOKUP_PERCPU = 1, 2, 3, 25, 130, 195
LD_IMM64, CALL, EXIT = 0x18, 0x85, 0x95
CLS_LDX, CLS_ST, CLS_STX, CLS_ALU, CLS_ALU64 = 1, 2, 3, 4, 7
MODE_MEM, MODE_ATOMIC = 0x60, 0xC0
ALU_ADD, ALU_MOV, SRC_REG = 0x00, 0xB0, 0x08
R10 = 10  # the frame pointer: spills live at r10 - n

Tag = tuple[str, str]  # ("map", name): the map itself; ("value", name): a pointer into one of its values


def map_uses(spec: ObjectSpec) -> dict[str, frozenset[str]]:
    """Map name -> what the object's code does with it (see the module doc);
    a map no instruction names is absent."""
    elf = spec.elf
    symbols = elf.symbols()
    maps_sec = elf.section(".maps")
    maps_index = maps_sec.index if maps_sec else -1
    by_offset = {s.value: s.name for s in symbols if s.section_index == maps_index and s.type != STT_SECTION}
    uses: defaultdict[str, set[str]] = defaultdict(set)
    big = elf.endian == ">"
    for rel in elf.sections:
        if rel.type != SHT_REL or not 0 < rel.info < len(elf.sections):
            continue
        code_sec = elf.sections[rel.info]
        if not code_sec.flags & SHF_EXECINSTR:
            continue
        code = elf.section_bytes(code_sec)
        loads: dict[int, str] = {}  # instruction index -> the map its ld_imm64 loads
        entry = struct.Struct(elf.endian + "QQ")
        data = elf.section_bytes(rel)
        for offset, info in entry.iter_unpack(data[: len(data) - len(data) % 16]):
            sym_index = info >> 32
            if offset % 8 or offset + 16 > len(code) or not 0 < sym_index < len(symbols):
                continue
            sym = symbols[sym_index]
            if sym.section_index != maps_index:
                continue
            name = sym.name
            if sym.type == STT_SECTION:  # a section-relative load: the offset is in the instruction's imm
                (imm,) = struct.unpack_from(elf.endian + "i", code, offset + 4)
                name = by_offset.get(imm, "")
            if name:
                loads[offset // 8] = name
        _scan(code, loads, big, uses)
    return {name: frozenset(u) for name, u in uses.items()}


def _scan(code: bytes, loads: dict[int, str], big: bool, uses: defaultdict[str, set[str]]) -> None:
    regs: dict[int, Tag] = {}
    stack: dict[int, Tag] = {}
    unpack = struct.Struct((">" if big else "<") + "BBhi").unpack_from
    i, n = 0, len(code) // 8
    while i < n:
        op, r, off, _imm = unpack(code, i * 8)
        dst, src = ((r >> 4), (r & 0x0F)) if big else ((r & 0x0F), (r >> 4))
        cls = op & 0x07
        if op == LD_IMM64:
            if i in loads:
                regs[dst] = ("map", loads[i])
            else:
                regs.pop(dst, None)
            i += 2
            continue
        i += 1
        if op == CALL:
            _call(src, _imm, regs, uses)
        elif op == EXIT:
            regs.clear()
            stack.clear()
        elif cls in (CLS_ALU, CLS_ALU64):
            alu = op & 0xF0
            if cls == CLS_ALU64 and alu == ALU_MOV and op & SRC_REG and src in regs:
                regs[dst] = regs[src]
            elif not (cls == CLS_ALU64 and alu == ALU_ADD and regs.get(dst, ("", ""))[0] == "value"):
                regs.pop(dst, None)  # anything but pointer arithmetic on a value pointer ends what it held
        elif cls == CLS_LDX:
            tag = stack.get(off) if src == R10 else None
            if tag is not None:
                regs[dst] = tag
            else:
                regs.pop(dst, None)
        elif cls in (CLS_ST, CLS_STX) and op & 0xE0 in (MODE_MEM, MODE_ATOMIC):
            target = regs.get(dst)
            if target is not None and target[0] == "value":
                uses[target[1]].add("inplace")
            if dst == R10:
                if cls == CLS_STX and src in regs:
                    stack[off] = regs[src]
                else:
                    stack.pop(off, None)
            if op & 0xE0 == MODE_ATOMIC and _imm & 0x01:  # BPF_FETCH: src receives the old value
                regs.pop(src, None)


def _call(kind: int, helper: int, regs: dict[int, Tag], uses: defaultdict[str, set[str]]) -> None:
    r1 = regs.get(1)
    result: Tag | None = None
    if kind != 0:  # a subprogram or a kfunc: a value pointer passed in may be written
        for reg in range(1, 6):
            tag = regs.get(reg)
            if tag is not None and tag[0] == "value":
                uses[tag[1]].add("inplace")
    elif helper in (LOOKUP, LOOKUP_PERCPU, UPDATE, DELETE) and r1 is not None and r1[0] == "map":
        uses[r1[1]].add({UPDATE: "update", DELETE: "delete"}.get(helper, "lookup"))
        if helper != DELETE and helper != UPDATE:
            result = ("value", r1[1])
    elif helper in (PERF_EVENT_OUTPUT, RINGBUF_OUTPUT):
        data = regs.get(4 if helper == PERF_EVENT_OUTPUT else 2)
        if data is not None and data[0] == "value":
            uses[data[1]].add("output")
    elif r1 is not None and r1[0] == "value":  # probe_read*(&v->comm, ...), get_current_comm(&v->comm, ...)
        uses[r1[1]].add("inplace")
    for reg in range(0, 6):
        regs.pop(reg, None)
    if result is not None:
        regs[0] = result


class MapRole(NamedTuple):
    name: str
    results: bool  # worth printing at exit
    why: str  # why not, for -v


def map_role(name: str, uses: frozenset[str] | None, event_value: bool = False) -> MapRole:
    """Whether a (printable-typed) map holds results, from what the code does
    with it; `event_value`: its value type is what an event buffer carries."""
    u = uses or frozenset()
    if "delete" in u:
        return MapRole(name, False, "state kept between events (the program deletes its entries)")
    if "output" in u or event_value:
        return MapRole(name, False, "scratch space for building events")
    if "inplace" in u:
        return MapRole(name, True, "")
    if "update" in u and "lookup" not in u:
        return MapRole(name, True, "")
    if "update" in u:
        return MapRole(name, False, "state kept between events (written whole and read back)")
    return MapRole(name, False, "the program never writes it (input filled from user space)")
