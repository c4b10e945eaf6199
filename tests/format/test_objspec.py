"""pyeunomia.format.objspec: programs, maps and globals of real and built objects."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from pyeunomia.format.btf import BTFError
from pyeunomia.format.elf import ELFError
from pyeunomia.format.objspec import GlobalVar, MapSpec, ObjectSpec, ProgramSpec
from tests.btfbuilder import (
    ENC_SIGNED,
    LINKAGE_EXTERN,
    LINKAGE_GLOBAL,
    LINKAGE_STATIC,
    SHF_ALLOC,
    SHF_EXECINSTR,
    STB_GLOBAL,
    STB_LOCAL,
    STB_WEAK,
    STT_FUNC,
    BtfBuilder,
    ElfBuilder,
    bpf_object,
)

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def upstream(name: str) -> ObjectSpec:
    doc = json.loads((UPSTREAM / f"{name}.json").read_text())
    return ObjectSpec(zlib.decompress(base64.b64decode(doc["bpf_object"])))


# -- the upstream objects -------------------------------------------------------------------


def test_bootstrap_programs():
    assert upstream("bootstrap").programs == [
        ProgramSpec("handle_exec", "tp/sched/sched_process_exec"),
        ProgramSpec("handle_exit", "tp/sched/sched_process_exit"),
    ]


def test_bootstrap_maps():
    spec = upstream("bootstrap")
    assert spec.maps == [
        MapSpec("exec_start", 1, key_type_id=8, value_type_id=11, key_size=4, value_size=8, max_entries=8192),
        MapSpec("rb", 27, max_entries=256 * 1024),
    ]
    assert [m.type_name for m in spec.maps] == ["hash", "ringbuf"]
    assert spec.map("rb") == spec.maps[1]
    assert spec.map("missing") is None
    assert spec.btf.c_name(8) == "pid_t"
    assert spec.btf.c_name(11) == "u64"


def test_bootstrap_globals():
    spec = upstream("bootstrap")
    assert spec.globals == [
        GlobalVar("__eunomia_dummy_event_ptr", ".bss", 0, 8, 610, "const volatile struct event *", bytes(8)),
        GlobalVar("min_duration_ns", ".rodata", 0, 8, 607, "unsigned long long", bytes(8)),
    ]


def test_runqlat_programs_and_maps():
    spec = upstream("runqlat")
    assert spec.programs == [
        ProgramSpec("handle_sched_wakeup", "raw_tp/sched_wakeup"),
        ProgramSpec("handle_sched_wakeup_new", "raw_tp/sched_wakeup_new"),
        ProgramSpec("handle_sched_switch", "raw_tp/sched_switch"),
    ]
    assert [(m.name, m.type, m.type_name, m.key_size, m.value_size, m.max_entries) for m in spec.maps] == [
        ("cgroup_map", 8, "cgroup_array", 4, 4, 1),
        ("start", 1, "hash", 4, 8, 10240),
        ("hists", 1, "hash", 4, 120, 10240),
    ]
    hists = spec.map("hists")
    assert hists is not None
    assert spec.btf.c_name(hists.value_type_id) == "struct hist"


def test_runqlat_globals_take_offsets_from_the_symbol_table():
    spec = upstream("runqlat")
    # the BTF says offset 0 for all of .rodata; the symbols say where they are
    assert [(g.name, g.section, g.offset, g.size, g.type_name) for g in spec.globals] == [
        ("__eunomia_dummy_hist_ptr", ".bss", 0, 8, "const volatile struct hist *"),
        ("filter_cg", ".rodata", 0, 1, "bool"),
        ("targ_per_process", ".rodata", 1, 1, "bool"),
        ("targ_per_thread", ".rodata", 2, 1, "bool"),
        ("targ_per_pidns", ".rodata", 3, 1, "bool"),
        ("targ_ms", ".rodata", 4, 1, "bool"),
        ("targ_tgid", ".rodata", 8, 4, "pid_t"),
    ]
    assert [g.initial for g in spec.globals] == [bytes(8), b"\0", b"\0", b"\0", b"\0", b"\0", bytes(4)]
    # the static `zero` in .bss (offset 8, 120 bytes) is not a global
    assert "zero" not in [g.name for g in spec.globals]
    bss = spec.btf.datasec(".bss")
    assert bss is not None
    assert (bss.size, [(v.offset, v.size) for v in bss.vars]) == (128, [(0, 8), (8, 120)])


# -- built objects ---------------------------------------------------------------------------


def map_btf(b: BtfBuilder, int_id: int, name: str, uints: dict[str, int], types: dict[str, int]) -> int:
    """A libbpf BTF map definition: __uint(x, N) is `int (*x)[N]`, __type(x, T) is `T *x`."""
    members = []
    for field, n in uints.items():
        members.append((field, b.ptr(b.array(int_id, n)), 64 * len(members)))
    for field, t in types.items():
        members.append((field, b.ptr(t), 64 * len(members)))
    definition = b.struct("", 8 * len(members), members)
    return b.var(name, definition, LINKAGE_GLOBAL)


def test_maps_of_a_built_object():
    b = BtfBuilder()
    i = b.int("int", 4, ENC_SIGNED)
    u64 = b.int("unsigned long long", 8)
    key = b.struct("key", 12, [("a", i, 0), ("b", u64, 32)])
    m1 = map_btf(b, i, "events", {"type": 4, "key_size": 4, "value_size": 4}, {})
    m2 = map_btf(b, i, "counts", {"type": 5, "max_entries": 1024}, {"key": key, "value": u64})
    m3 = map_btf(b, i, "sized", {"type": 2, "max_entries": 1, "value_size": 64}, {"key": i})
    opaque = b.fwd("opaque")
    m4 = map_btf(b, i, "odd", {"type": 99}, {"value": opaque})
    b.datasec(".maps", [(m1, 0, 24), (m2, 24, 32), (m3, 56, 32), (m4, 88, 16)])
    spec = ObjectSpec(bpf_object(b.build(), maps_size=104))
    assert spec.maps == [
        MapSpec("events", 4, key_size=4, value_size=4),
        MapSpec("counts", 5, key_type_id=key, value_type_id=u64, key_size=12, value_size=8, max_entries=1024),
        MapSpec("sized", 2, key_type_id=i, key_size=4, value_size=64, max_entries=1),
        MapSpec("odd", 99, value_type_id=opaque),  # a forward declaration has no size
    ]
    assert [m.type_name for m in spec.maps] == ["perf_event_array", "percpu_hash", "array", "type 99"]


def test_object_without_maps():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)
    spec = ObjectSpec(bpf_object(b.build()))
    assert spec.maps == []
    assert spec.globals == []
    assert spec.programs == []


def test_programs_are_global_functions_in_exec_sections_other_than_text():
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)
    e = ElfBuilder()
    text = e.section(".text", bytes(16), flags=SHF_ALLOC | SHF_EXECINSTR)
    kp = e.section("kprobe/do_unlinkat", bytes(32), flags=SHF_ALLOC | SHF_EXECINSTR)
    xdp = e.section("xdp", bytes(16), flags=SHF_ALLOC | SHF_EXECINSTR)
    data = e.section(".data", bytes(8), flags=SHF_ALLOC)
    e.section(".BTF", b.build())
    e.symbol("helper", text, 0, 16, STB_GLOBAL, STT_FUNC)       # a subprogram
    e.symbol("first", kp, 0, 16, STB_GLOBAL, STT_FUNC)
    e.symbol("second", kp, 16, 16, STB_GLOBAL, STT_FUNC)        # two programs in one section
    e.symbol("hidden", xdp, 0, 16, STB_LOCAL, STT_FUNC)         # static: libbpf refuses it too
    e.symbol("weakling", xdp, 0, 16, STB_WEAK, STT_FUNC)          # weak: libbpf loads it
    e.symbol("not_code", data, 0, 8, STB_GLOBAL, STT_FUNC)      # not in an executable section
    e.symbol("orphan", 99, 0, 8, STB_GLOBAL, STT_FUNC)          # section index out of range
    assert ObjectSpec(e.build()).programs == [ProgramSpec("first", "kprobe/do_unlinkat"),
                                              ProgramSpec("second", "kprobe/do_unlinkat"),
                                              ProgramSpec("weakling", "xdp")]


def globals_object(endian: str = "<") -> bytes:
    b = BtfBuilder(endian)
    i = b.int("int", 4, ENC_SIGNED)                                  # 1
    c = b.int("char", 1, ENC_SIGNED)                                 # 2
    cv = b.const(b.volatile(i))                                      # 4 (3 is volatile)
    name = b.array(c, 8)                                             # 5
    v_limit = b.var("limit", cv)                                     # 6
    v_label = b.var("label", name)                                   # 7
    v_hidden = b.var("hidden", i, LINKAGE_STATIC)                    # 8
    v_count = b.var("count", i)                                      # 9
    v_ext = b.var("ext", i, LINKAGE_EXTERN)                          # 10
    v_lic = b.var("LICENSE", b.array(c, 4))                          # 12 (11 is the array)
    v_tuned = b.var("tuned", i)                                      # 13
    b.datasec(".rodata", [(v_limit, 0, 4), (v_label, 0, 8), (v_hidden, 0, 4)])
    b.datasec(".bss", [(v_count, 0, 4)])
    b.datasec(".kconfig", [(v_ext, 0, 4)])
    b.datasec("license", [(v_lic, 0, 4)])
    b.datasec(".data.tuning", [(v_tuned, 0, 4)])
    rodata = struct.pack(endian + "i", -5) + bytes(4) + b"hello\0\0\0" + struct.pack(endian + "i", 77)
    return bpf_object(b.build(), endian=endian,
                      data={".rodata": rodata, "license": b"GPL\0", ".data.tuning": struct.pack(endian + "i", 3)},
                      bss_size=8,
                      symbols=[("limit", ".rodata", 0, 4, STB_GLOBAL), ("label", ".rodata", 8, 8, STB_GLOBAL),
                               ("hidden", ".rodata", 16, 4, STB_LOCAL), ("count", ".bss", 4, 4, STB_GLOBAL),
                               ("LICENSE", "license", 0, 4, STB_GLOBAL),
                               ("tuned", ".data.tuning", 0, 4, STB_GLOBAL)])


@pytest.mark.parametrize("endian", ["<", ">"])
def test_globals_of_a_built_object(endian):
    spec = ObjectSpec(globals_object(endian))
    assert spec.globals == [
        GlobalVar("limit", ".rodata", 0, 4, 4, "int", struct.pack(endian + "i", -5)),
        GlobalVar("label", ".rodata", 8, 8, 5, "char[8]", b"hello\0\0\0"),
        GlobalVar("count", ".bss", 4, 4, 1, "int", bytes(4)),
        GlobalVar("tuned", ".data.tuning", 0, 4, 1, "int", struct.pack(endian + "i", 3)),
    ]


def test_data_section_sizes_are_filled_in():
    spec = ObjectSpec(globals_object())
    sizes = {t.name: t.size for t in spec.btf.types if t.kind.name == "DATASEC"}
    assert sizes == {".rodata": 20, ".bss": 8, ".kconfig": 0, "license": 4, ".data.tuning": 4}


def test_global_beyond_its_section_is_refused():
    b = BtfBuilder()
    i = b.int("int", 4, ENC_SIGNED)
    v = b.var("late", i)
    b.datasec(".data", [(v, 0, 4)])
    obj = bpf_object(b.build(), data={".data": bytes(6)}, symbols=[("late", ".data", 4, 4, STB_GLOBAL)])
    with pytest.raises(ELFError, match=r"^global 'late' lies outside section \.data$"):
        ObjectSpec(obj).globals  # noqa: B018


def test_datasec_without_its_elf_section():
    b = BtfBuilder()
    i = b.int("int", 4, ENC_SIGNED)
    v = b.var("ghost", i)
    b.datasec(".data", [(v, 0, 4)])
    with pytest.raises(ELFError, match=r"^global 'ghost' lies outside section \.data$"):
        ObjectSpec(bpf_object(b.build())).globals  # noqa: B018


def test_object_without_btf():
    e = ElfBuilder()
    e.section("xdp", bytes(8), flags=SHF_ALLOC | SHF_EXECINSTR)
    with pytest.raises(BTFError, match=r"^the object has no BTF \(\.BTF section\): compile it with clang -g$"):
        ObjectSpec(e.build())


def test_btf_byte_order_must_match_the_elf():
    b = BtfBuilder(">")
    b.int("int", 4, ENC_SIGNED)
    with pytest.raises(BTFError, match=r"^the object's BTF byte order differs from its ELF's$"):
        ObjectSpec(bpf_object(b.build(), endian="<"))


def test_not_an_elf():
    with pytest.raises(ELFError, match=r"^not an ELF object \(bad magic\)$"):
        ObjectSpec(b"{}")


def test_bad_btf_inside_a_good_elf():
    e = ElfBuilder()
    e.section(".BTF", b"\x9f\xeb\x01\x00" + bytes(20))
    with pytest.raises(BTFError, match=r"^BTF header length is out of range$"):
        ObjectSpec(e.build())
