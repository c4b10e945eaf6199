"""Turn a program's perf event array into a ring buffer at load time.

Why: with the tutorial's opensnoop (bpf_perf_event_output of a 296-byte event),
bpf_stats puts the two programs at 1,180-1,280 ns per open; the same source
written with bpf_ringbuf_output(..., BPF_RB_NO_WAKEUP) runs in 875-900 ns
(-335 ns, -27%), and with flags 0 (a wakeup whenever the reader has caught up)
in 1,030-1,080 ns. Measured on the 2-CPU VM, 300,000 opens, 3 runs each.

How, without inserting an instruction (so jump offsets, subprogram calls,
.BTF.ext line/func info and relocation offsets all stay as they are):

    bpf_perf_event_output(r1=ctx, r2=map, r3=flags, r4=data, r5=size)
    bpf_ringbuf_output(r1=map, r2=data, r3=size, r4=flags)

Within the straight-line run of instructions that sets up the call (from the
previous jump, call, exit or jump target), registers r1-r5 are renamed by the
permutation r2->r1, r4->r2, r5->r3, r3->r4, r1->r5: every instruction there
writes what the helper will read in the right register. The run must not read
r1-r5 before writing them (nothing flows in), the map must be loaded there by
an ld_imm64 with a relocation against a `.maps` symbol, and the flags by a
constant load of BPF_F_CURRENT_CPU, which becomes BPF_RB_NO_WAKEUP. A map is
converted only when every reference to it in the object is such a call; the
loader then makes it a BPF_MAP_TYPE_RINGBUF (bpf_map__set_type) before load.

BPF_RB_NO_WAKEUP: the reader is never woken by the kernel and finds records by
its poll timeout and by looking again every perf_buffer_time_ms while records
flow -- what the perf array's half-ring watermark amounted to already. What is
lost: a full ring drops records silently (ring buffers count no drops; perf
arrays report PERF_RECORD_LOST), so the ring is as large as the perf rings were.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..format.elf import SHF_EXECINSTR, ElfFile

SHT_REL = 9
BPF_FUNC_PERF_EVENT_OUTPUT = 25
BPF_FUNC_RINGBUF_OUTPUT = 130
BPF_F_CURRENT_CPU = 0xFFFFFFFF
BPF_RB_NO_WAKEUP = 1
R_BPF_64_64 = 1

# r2 (the map) -> r1, r4 (data) -> r2, r5 (size) -> r3, r3 (flags) -> r4, r1 (ctx) -> r5 (unused by the helper)
RENAME = {0: 0, 1: 5, 2: 1, 3: 4, 4: 2, 5: 3, 6: 6, 7: 7, 8: 8, 9: 9, 10: 10}
ARGS = range(1, 6)

# instruction classes and codes (linux/bpf.h)
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
LD_IMM64 = 0x18
CALL = 0x85
EXIT = 0x95
MOV = 0xB0
END = 0xD0
SRC_X = 0x08
PSEUDO_CALL = 1
ATOMIC_MODE = 0xC0
FETCH = 0x01
CMPXCHG = 0xF0 | FETCH


class Rewrite(NamedTuple):
    """The object with every convertible call rewritten, and the maps that
    must be created as ring buffers for it to load. (Not a dataclass:
    dataclasses imports inspect, ~10 ms of every tool's start-up.)"""

    data: bytes
    maps: list[str]
    calls: int = 0
    refused: dict[str, str] = {}  # noqa: RUF012 - never mutated: map -> why it stays a perf array


class _Insn:
    __slots__ = ("code", "dst", "imm", "off", "src")

    def __init__(self, raw: bytes, e: str):
        self.code, regs, self.off, self.imm = struct.unpack(e + "BBhi", raw)
        if e == "<":
            self.dst, self.src = regs & 0xF, regs >> 4
        else:
            self.dst, self.src = regs >> 4, regs & 0xF

    def encode(self, e: str) -> bytes:
        regs = (self.src << 4 | self.dst) if e == "<" else (self.dst << 4 | self.src)
        return struct.pack(e + "BBhi", self.code, regs, self.off, self.imm)


def _reads_writes(i: _Insn) -> tuple[set[int], set[int]] | None:
    """Registers an instruction reads and writes; None for one that cannot
    stand in a run being renamed (legacy packet loads)."""
    cls = i.code & 7
    if i.code == LD_IMM64:
        return set(), {i.dst}
    if cls in (ALU, ALU64):
        op = i.code & 0xF0
        src = {i.src} if i.code & SRC_X and op not in (END,) else set()
        return (src if op == MOV else src | {i.dst}), {i.dst}
    if cls == LDX:
        return {i.src}, {i.dst}
    if cls == ST:
        return {i.dst}, set()
    if cls == STX:
        writes = set()
        if i.code & 0xE0 == ATOMIC_MODE and i.imm & FETCH:
            writes = {0} if i.imm == CMPXCHG else {i.src}
        return {i.dst, i.src} | ({0} if i.imm == CMPXCHG else set()), writes
    return None


def _is_boundary(i: _Insn) -> bool:
    return i.code & 7 in (JMP, JMP32)


def _jump_targets(insns: list[_Insn]) -> set[int]:
    targets = set()
    for n, i in enumerate(insns):
        cls = i.code & 7
        if cls not in (JMP, JMP32) or i.code == EXIT:
            continue
        if i.code == CALL:
            if i.src == PSEUDO_CALL:
                targets.add(n + i.imm + 1)
            continue
        targets.add(n + (i.imm if i.code == (JMP32 | 0x00) else i.off) + 1)
    return targets


def _code_units(elf: ElfFile) -> list[tuple[int, list[_Insn], dict[int, str]]]:
    """(section index, instructions, {insn index: map name of an ld_imm64 relocation})
    for every executable section; (-1, [], {offset: map name}) for references
    to maps from sections that are not code."""
    symbols = elf.symbols()
    maps_section = elf.section(".maps")
    maps_index = maps_section.index if maps_section is not None else -1
    rels: dict[int, dict[int, str]] = {}
    for s in elf.sections:
        if s.type != SHT_REL:
            continue
        table = elf.section_bytes(s)
        found = rels.setdefault(s.info, {})
        for off in range(0, len(table) - 15, 16):
            r_offset, r_info = struct.unpack_from(elf.endian + "QQ", table, off)
            sym = r_info >> 32
            if sym < len(symbols) and symbols[sym].section_index == maps_index and r_offset % 8 == 0:
                found[r_offset // 8] = symbols[sym].name
    out: list[tuple[int, list[_Insn], dict[int, str]]] = []
    for target, found in rels.items():  # .rel.maps: an inner map of a map-in-map (.rel.BTF only names them)
        if target == maps_index and found:
            out.append((-1, [], found))
    for s in elf.sections:
        if s.flags & SHF_EXECINSTR and s.size:
            raw = elf.section_bytes(s)
            insns = [_Insn(raw[k : k + 8], elf.endian) for k in range(0, len(raw) - 7, 8)]
            out.append((s.index, insns, rels.get(s.index, {})))
    return out


def _plan(insns: list[_Insn], call: int, targets: set[int], map_refs: dict[int, str]) -> tuple[str, int, int] | str:
    """(map name, first insn of the run, map's ld_imm64 index) for a call
    that can be rewritten, or why not."""
    start = call
    while start > 0 and start not in targets and not _is_boundary(insns[start - 1]):
        start -= 1
        if insns[start].code == 0 and start > 0 and insns[start - 1].code == LD_IMM64:
            start -= 1  # the second half of an ld_imm64
    written: set[int] = set()
    last: dict[int, int] = {}
    n = start
    while n < call:
        i = insns[n]
        rw = _reads_writes(i)
        if rw is None:
            return f"instruction {n} (code {i.code:#x}) cannot be renamed"
        reads, writes = rw
        early = (reads & set(ARGS)) - written
        if early:
            return f"r{min(early)} flows into the call's set-up from before instruction {start}"
        if 3 in reads and 3 in last:
            return "the flags are read before the call"
        for r in writes:
            written.add(r)
            last[r] = n
        n += 2 if i.code == LD_IMM64 else 1
    unset = {2, 3, 4, 5} - set(last)  # the helper reads them: renamed, each must be written here
    if unset:
        return f"r{min(unset)} is not set next to the call"
    m, f = insns[last[2]], insns[last[3]]
    name = map_refs.get(last[2])
    if m.code != LD_IMM64 or m.src != 0 or name is None:
        return "the map is not loaded by name next to the call"
    if f.code == LD_IMM64 and f.src == 0:
        value = (f.imm & 0xFFFFFFFF) | (insns[last[3] + 1].imm & 0xFFFFFFFF) << 32
    elif f.code in (ALU | MOV, ALU64 | MOV) and not f.code & SRC_X:
        value = f.imm & 0xFFFFFFFF if f.code & 7 == ALU or f.imm >= 0 else f.imm & (2**64 - 1)
    else:
        return "the flags are not a constant"
    if value != BPF_F_CURRENT_CPU:
        return f"flags {value:#x}: only BPF_F_CURRENT_CPU is rewritten"
    return name, start, last[3]


def rewrite(data: bytes) -> Rewrite:
    """`data` (a BPF ELF object) with every perf event array whose only uses
    are bpf_perf_event_output calls rewritten to bpf_ringbuf_output calls."""
    elf = ElfFile(data)
    e = elf.endian
    plans: list[tuple[str, int, list[_Insn], int, int, int]] = []  # map, section, insns, call, start, flags insn
    used: dict[str, int] = {}  # references to each map in code
    callers: dict[str, int] = {}  # ... of which set up a call that can be rewritten
    refused: dict[str, str] = {}
    for index, insns, refs in _code_units(elf):
        for name in refs.values():
            used[name] = used.get(name, 0) + 1
            if index < 0:
                refused.setdefault(name, "the map is referred to outside the programs' code")
        targets = _jump_targets(insns)
        for n, i in enumerate(insns):
            if i.code != CALL or i.src != 0 or i.imm != BPF_FUNC_PERF_EVENT_OUTPUT:
                continue
            plan = _plan(insns, n, targets, refs)
            if isinstance(plan, str):
                near = next((refs[k] for k in range(n - 1, max(-1, n - 32), -1) if k in refs), "?")
                refused.setdefault(near, f"call at instruction {n}: {plan}")
                continue
            name, start, flags_at = plan
            callers[name] = callers.get(name, 0) + 1
            plans.append((name, index, insns, n, start, flags_at))
    wanted = set()
    for name, count in callers.items():
        if name in refused:
            continue
        if count != used.get(name):
            refused[name] = "the map is used by more than bpf_perf_event_output calls"
        else:
            wanted.add(name)
    out = bytearray(data)
    base = {s.index: s.offset for s in elf.sections}

    def put(index: int, n: int, insn: _Insn) -> None:
        at = base[index] + n * 8
        out[at : at + 8] = insn.encode(e)

    calls = 0
    for name, index, insns, call, start, flags_at in plans:
        if name not in wanted:
            continue
        n = start
        while n < call:
            i = insns[n]
            i.dst = RENAME[i.dst]
            if i.code != LD_IMM64:  # an ld_imm64's src_reg says what it loads (a map fd...)
                i.src = RENAME.get(i.src, i.src)
            put(index, n, i)
            n += 2 if i.code == LD_IMM64 else 1
        f = insns[flags_at]
        f.imm = BPF_RB_NO_WAKEUP
        put(index, flags_at, f)
        if f.code == LD_IMM64:
            insns[flags_at + 1].imm = 0
            put(index, flags_at + 1, insns[flags_at + 1])
        insns[call].imm = BPF_FUNC_RINGBUF_OUTPUT
        put(index, call, insns[call])
        calls += 1
    return Rewrite(bytes(out), sorted(wanted), calls, {k: v for k, v in refused.items() if k not in wanted})
