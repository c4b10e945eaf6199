"""How large the records are that a program writes into each event buffer,
read from its instructions and relocations. Pure.

ecc uses it to tell which header struct a ring buffer or perf event array
carries (a struct whose size equals what the program reserves), and ecli to
pick among several export types of a package that does not say.

The helpers and the registers holding the map and the size:

    bpf_ringbuf_reserve(map=r1, size=r2)          id 131 (and _dynptr, 198)
    bpf_ringbuf_output(map=r1, data=r2, size=r3)  id 130
    bpf_perf_event_output(ctx, map=r2, flags, data, size=r5)  id 25
    (bpf_skb_output 111 and bpf_xdp_output 121 take the same registers)

A forward walk over each executable section keeps, per register, a constant
(`r2 = 40`) or a map (`r1 = events ll`, a 64-bit load that a relocation
points at a symbol of `.maps`), copied by register moves. What clang emits
for `bpf_ringbuf_reserve(&events, sizeof(*e), 0)` is exactly that. Anything
else clears the register: a jump target (state from another path may
differ), a load, arithmetic, a call (r0-r5). So a size is reported only when
it is certain on the straight path to the call; a size held on the stack or
computed (libbpf-tools' execsnoop sends EVENT_SIZE(e)) is "unknown", never
a wrong number.
"""

from __future__ import annotations

import struct

from .elf import SHF_EXECINSTR, ElfFile

SHT_REL = 9
CALL, EXIT = 0x85, 0x95
LD_IMM64 = 0x18
CLASS_LD, CLASS_LDX, CLASS_JMP, CLASS_JMP32, CLASS_ALU, CLASS_ALU64 = 0, 1, 5, 6, 4, 7
OP_MOV = 0xB0
SRC_X = 0x08
# helper id -> (map register, size register)
BUFFER_HELPERS = {131: (1, 2), 198: (1, 2), 130: (1, 3), 25: (2, 5), 111: (2, 5), 121: (2, 5)}
PERF_HELPERS = frozenset({25, 111, 121})
# Instructions read per section at most: opensnoop's biggest section has a few
# thousand. A package is not trusted: 64 MiB of "code" would otherwise cost a
# list of 8 million tuples (over a gigabyte). Beyond this a section's writes
# stay unknown, which only means no size is guessed from it.
MAX_INSNS = 1 << 17
_INSN = {"<": struct.Struct("<BBhi"), ">": struct.Struct(">BBhi")}
_REL = {"<": struct.Struct("<QQ"), ">": struct.Struct(">QQ")}


class BufferWrites:
    """What one map is written with: the constant sizes seen, and how many
    writes had a size that is not a constant on the path to the call. (Not a
    dataclass: importing dataclasses loads inspect, 8-10 ms of start-up for
    every ecli run; see format/record.py.)"""

    __slots__ = ("sizes", "unknown")

    def __init__(self, sizes: set[int] | None = None, unknown: int = 0):
        self.sizes: set[int] = sizes if sizes is not None else set()
        self.unknown = unknown

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BufferWrites) and (self.sizes, self.unknown) == (other.sizes, other.unknown)

    def __repr__(self) -> str:
        return f"BufferWrites(sizes={self.sizes!r}, unknown={self.unknown!r})"

    @property
    def size(self) -> int | None:
        """The one size every write uses, if there is one."""
        return next(iter(self.sizes)) if len(self.sizes) == 1 and not self.unknown else None


class _Map:
    """A register holding a map's address (not a number)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def _map_loads(elf: ElfFile) -> dict[int, dict[int, str]]:
    """Section index -> instruction index -> map name, for the 64-bit loads
    of a map's address."""
    maps = elf.section(".maps")
    if maps is None:
        return {}
    symbols = elf.symbols()
    rel = _REL[elf.endian]
    out: dict[int, dict[int, str]] = {}
    for s in elf.sections:
        if s.type != SHT_REL or s.entsize not in (0, 16):
            continue
        data = elf.section_bytes(s)
        loads = out.setdefault(s.info, {})
        for offset, info in rel.iter_unpack(data[: len(data) - len(data) % 16]):
            sym = info >> 32
            if 0 < sym < len(symbols) and symbols[sym].section_index == maps.index and offset % 8 == 0:
                loads[offset // 8] = symbols[sym].name
    return out


def _jump_targets(insns: list[tuple[int, int, int, int]]) -> set[int]:
    targets: set[int] = set()
    for i, (op, _regs, off, imm) in enumerate(insns):
        cls = op & 7
        if cls in (CLASS_JMP, CLASS_JMP32) and op not in (CALL, EXIT):
            targets.add(i + 1 + (imm if op == 0x06 else off))  # gotol (JMP32|JA) jumps by imm
    return targets


def _scan(elf: ElfFile, section_index: int, maps: dict[int, str], out: dict[str, BufferWrites]) -> None:
    code = elf.section_bytes(elf.sections[section_index])
    unpack = _INSN[elf.endian].iter_unpack
    insns = list(unpack(code[: len(code) - len(code) % 8]))
    targets = _jump_targets(insns)
    big = elf.endian == ">"
    regs: dict[int, int | _Map] = {}
    i = 0
    while i < len(insns):
        if i in targets:
            regs.clear()
        op, r, _off, imm = insns[i]
        dst, src = ((r >> 4), (r & 0x0F)) if big else ((r & 0x0F), (r >> 4))
        cls = op & 7
        if op == LD_IMM64:
            if i in maps:
                regs[dst] = _Map(maps[i])
            elif i + 1 < len(insns) and src == 0:
                regs[dst] = (imm & 0xFFFFFFFF) | ((insns[i + 1][3] & 0xFFFFFFFF) << 32)
            else:
                regs.pop(dst, None)
            i += 2
            continue
        if op == CALL:
            if src == 0 and imm in BUFFER_HELPERS:
                map_reg, size_reg = BUFFER_HELPERS[imm]
                target, size = regs.get(map_reg), regs.get(size_reg)
                if isinstance(target, _Map):
                    writes = out.setdefault(target.name, BufferWrites())
                    if isinstance(size, int):
                        writes.sizes.add(size)
                    else:
                        writes.unknown += 1
            for reg in range(6):
                regs.pop(reg, None)
        elif cls in (CLASS_ALU, CLASS_ALU64) and op & 0xF0 == OP_MOV and _off == 0:
            if op & SRC_X:
                value = regs.get(src)
                if value is None or (cls == CLASS_ALU and not isinstance(value, int)):
                    regs.pop(dst, None)
                else:
                    regs[dst] = value & 0xFFFFFFFF if cls == CLASS_ALU and isinstance(value, int) else value
            else:
                regs[dst] = imm & 0xFFFFFFFF if cls == CLASS_ALU else imm
        elif cls in (CLASS_ALU, CLASS_ALU64, CLASS_LDX, CLASS_LD):
            regs.pop(dst, None)
        i += 1


def buffer_writes(elf: ElfFile) -> dict[str, BufferWrites]:
    """Map name -> the record sizes the object's programs write into it
    (4 ms for opensnoop's 150 KB object, 0.2 ms for upstream's bootstrap)."""
    out: dict[str, BufferWrites] = {}
    loads = _map_loads(elf)
    for s in elf.sections:
        # a section that loads no map cannot hand one to a helper
        if s.flags & SHF_EXECINSTR and 0 < s.size <= 8 * MAX_INSNS and loads.get(s.index):
            _scan(elf, s.index, loads[s.index], out)
    return out
