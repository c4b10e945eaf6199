"""runner/perf2ring.py: bpf_perf_event_output calls rewritten in place into
bpf_ringbuf_output calls, checked on instruction bytes."""

from __future__ import annotations

import shutil
import struct

import pytest

from pyeunomia.format.elf import SHF_EXECINSTR, ElfFile
from pyeunomia.runner import perf2ring
from pyeunomia.runner.perf2ring import RENAME, _Insn, _jump_targets, _plan

from ..conftest import require
from ..e2e.helpers import compile_bpf, temp_dir


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, src << 4 | dst, off, imm)


def decode(raw: bytes) -> list[_Insn]:
    return [_Insn(raw[k : k + 8], "<") for k in range(0, len(raw), 8)]


MOV64_REG, MOV64_IMM, ADD64_IMM, LDX_W, STX_W, LD_IMM64, CALL, EXIT, JEQ_IMM = (
    0xBF, 0xB7, 0x07, 0x61, 0x63, 0x18, 0x85, 0x95, 0x15)

# what clang emits for the tutorial's exit program, from the previous call on
TUTORIAL_TAIL = [
    insn(CALL, imm=114),                   # 0: bpf_probe_read_user_str
    insn(LDX_W, 1, 7, 8),                  # 1: r1 = *(u32 *)(r7 + 8)
    insn(STX_W, 10, 1, -276),              # 2: *(u32 *)(r10 - 276) = r1
    insn(MOV64_REG, 4, 10),                # 3: r4 = r10
    insn(ADD64_IMM, 4, imm=-296),          # 4: r4 += -296
    insn(MOV64_REG, 1, 6),                 # 5: r1 = r6 (ctx)
    insn(LD_IMM64, 2), insn(0),            # 6: r2 = events ll (relocated)
    insn(LD_IMM64, 3, imm=-1), insn(0),    # 8: r3 = 0xffffffff ll (BPF_F_CURRENT_CPU)
    insn(MOV64_IMM, 5, imm=296),           # 10: r5 = 296
    insn(CALL, imm=25),                    # 11: bpf_perf_event_output
    insn(MOV64_IMM, 0), insn(EXIT),
]


def plan_of(raw: list[bytes], refs: dict[int, str] | None = None) -> object:
    insns = decode(b"".join(raw))
    call = next(n for n, i in enumerate(insns) if i.code == CALL and i.imm == 25)
    return _plan(insns, call, _jump_targets(insns), {6: "events"} if refs is None else refs)


def test_the_tutorial_call_is_planned_from_the_previous_call():
    assert plan_of(TUTORIAL_TAIL) == ("events", 1, 8)


def test_the_permutation_puts_each_argument_where_ringbuf_output_reads_it():
    # perf_event_output(ctx, map, flags, data, size) -> ringbuf_output(map, data, size, flags)
    assert [RENAME[r] for r in (2, 4, 5, 3)] == [1, 2, 3, 4]
    assert sorted(RENAME[r] for r in range(1, 6)) == [1, 2, 3, 4, 5]
    assert all(RENAME[r] == r for r in (0, 6, 7, 8, 9, 10))


@pytest.mark.parametrize("change, reason", [
    ({8: insn(LD_IMM64, 3, imm=0)}, "flags 0x0: only BPF_F_CURRENT_CPU is rewritten"),
    ({8: insn(MOV64_REG, 3, 8), 9: insn(MOV64_REG, 0, 0)}, "the flags are not a constant"),
    ({1: insn(LDX_W, 1, 3, 8)}, "r3 flows into the call's set-up from before instruction 1"),
    ({10: insn(MOV64_REG, 5, 3)}, "the flags are read before the call"),
    # a jump to the map's load: the data pointer (r4) comes from before it, where nothing is renamed
    ({0: insn(JEQ_IMM, 6, off=5)}, "r4 is not set next to the call"),
])
def test_calls_it_cannot_prove_are_left_alone(change: dict[int, bytes], reason: str):
    raw = list(TUTORIAL_TAIL)
    for k, v in change.items():
        raw[k] = v
    assert plan_of(raw) == reason


def test_a_map_loaded_without_a_relocation_is_left_alone():
    assert plan_of(TUTORIAL_TAIL, refs={}) == "the map is not loaded by name next to the call"


PROGRAM = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct event { unsigned int pid; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } other SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } percpu SEC(".maps");
SEC("tp/syscalls/sys_enter_getppid")
int one(void *ctx) {
    struct event e = {};
    e.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(e.comm, sizeof(e.comm));
    if (e.pid == 1)
        return 0;
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    bpf_perf_event_output(ctx, &percpu, 0, &e, sizeof(e));
    return 0;
}
SEC("tp/syscalls/sys_enter_getpid")
int two(void *ctx) {
    struct event e = {};
    e.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    bpf_perf_event_output(ctx, &other, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return bpf_map_lookup_elem(&other, &e.pid) != 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def compiled() -> bytes:
    require(shutil.which("clang") is not None, "clang is not installed (make test installs it)")
    return compile_bpf(PROGRAM, temp_dir(), "p2r").read_bytes()


def code_sections(data: bytes) -> dict[str, list[bytes]]:
    elf = ElfFile(data)
    out = {}
    for s in elf.sections:
        if s.flags & SHF_EXECINSTR and s.size:
            raw = elf.section_bytes(s)
            out[s.name] = [raw[k : k + 8] for k in range(0, len(raw), 8)]
    return out


def test_only_maps_used_by_rewritable_calls_alone_become_rings(compiled: bytes):
    done = perf2ring.rewrite(compiled)
    assert done.maps == ["events"]
    assert done.calls == 2
    assert done.refused["percpu"].endswith("flags 0x0: only BPF_F_CURRENT_CPU is rewritten")
    assert done.refused["other"] == "the map is used by more than bpf_perf_event_output calls"


def test_instruction_bytes_change_only_as_the_rewrite_says(compiled: bytes):
    done = perf2ring.rewrite(compiled)
    before, after = code_sections(compiled), code_sections(done.data)
    assert len(done.data) == len(compiled)
    assert {k: len(v) for k, v in before.items()} == {k: len(v) for k, v in after.items()}
    rewritten_calls = 0
    for name, old in before.items():
        new = after[name]
        changed = [n for n, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        for n in changed:
            a, b = decode(old[n])[0], decode(new[n])[0]
            if a.code == CALL:
                assert (a.imm, old[n][:4]) == (25, new[n][:4])
                assert new[n] == insn(CALL, imm=130)  # bpf_ringbuf_output
                rewritten_calls += 1
            elif a.code == 0:  # an ld_imm64's upper half: the flags' 0
                assert b.imm == 0 and a.imm == 0
            else:
                assert b.code == a.code and b.off == a.off and b.dst == RENAME[a.dst]
                if a.code == LD_IMM64 and a.dst == 3:  # the flags: BPF_F_CURRENT_CPU -> BPF_RB_NO_WAKEUP
                    assert (a.imm, b.imm, b.dst) == (-1, 1, 4)
                else:
                    assert b.imm == a.imm
                    assert b.src == (a.src if a.code == LD_IMM64 else RENAME[a.src])
        # every rename is in the few instructions before a rewritten call
        calls = [n for n in changed if decode(new[n])[0].code == CALL]
        assert all(any(0 < c - n < 16 for c in calls) for n in changed if n not in calls)
    assert rewritten_calls == 2
    # everything that is not code is untouched: relocations, BTF and .BTF.ext alike
    elf_old, elf_new = ElfFile(compiled), ElfFile(done.data)
    for s in elf_old.sections:
        if not s.flags & SHF_EXECINSTR:
            assert elf_old.section_bytes(s) == elf_new.section_bytes(elf_new.sections[s.index]), s.name


def test_an_object_without_perf_output_is_returned_unchanged(compiled: bytes):
    source = PROGRAM.replace("bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));", "")
    data = compile_bpf(source, temp_dir(), "p2r_none").read_bytes()
    done = perf2ring.rewrite(data)
    assert done.maps == [] and done.calls == 0 and done.data == data


INNER_MAP = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct perf_array { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); };
struct perf_array events SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, int);
    __array(values, struct perf_array);
} outer SEC(".maps") = { .values = { &events } };
SEC("tp/syscalls/sys_enter_getppid")
int one(void *ctx) {
    int pid = bpf_get_current_pid_tgid() >> 32;
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &pid, sizeof(pid));
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_a_perf_array_that_is_also_an_inner_map_stays(compiled: bytes):
    data = compile_bpf(INNER_MAP, temp_dir(), "p2r_inner").read_bytes()
    done = perf2ring.rewrite(data)
    assert done.maps == [] and done.data == data
    assert done.refused == {"events": "the map is referred to outside the programs' code"}
