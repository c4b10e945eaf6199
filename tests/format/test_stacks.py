"""pyeunomia.format.stacks: upstream's stack_trace interpreter read from a
package, and samples read from records laid out as upstream's profile lays
them out (bpf-loader-rs's test data: assets/profile_test/gen_data.c)."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.errors import PackageError
from pyeunomia.format.btf import Btf
from pyeunomia.format.layout import Layout, struct_layout
from pyeunomia.format.package import Package
from pyeunomia.format.stacks import Sample, SampleReader, StackTraceSpec, check_interpreter, stack_trace_specs
from tests.btfbuilder import ENC_SIGNED, BtfBuilder

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def profile_layout(*, ids: bool = False, names: tuple[str, ...] = ("pid", "cpu_id", "comm", "kstack_sz",
                                                                   "ustack_sz", "kstack", "ustack")) -> Layout:
    """struct stacktrace_event of eunomia's profile (2080 bytes); with `ids`,
    kstack and ustack are s64 stack ids instead of arrays (48 bytes)."""
    b = BtfBuilder()
    u32 = b.int("unsigned int", 4)
    s32 = b.int("int", 4, ENC_SIGNED)
    s64 = b.int("long long", 8, ENC_SIGNED)
    char = b.int("char", 1, ENC_SIGNED)
    u64 = b.int("unsigned long long", 8)
    comm = b.array(char, 16)
    stack = b.typedef("stack_trace_t", b.array(u64, 128))
    if ids:
        members = [(names[0], u32, 0), (names[1], u32, 32), (names[2], comm, 64), (names[3], s32, 192),
                   (names[4], s32, 224), (names[5], s64, 256), (names[6], s64, 320)]
        sid = b.struct("stackid_event", 48, members)
        return struct_layout(Btf.parse(b.build()), sid)
    members = [(names[0], u32, 0), (names[1], u32, 32), (names[2], comm, 64), (names[3], s32, 192),
               (names[4], s32, 224), (names[5], stack, 256), (names[6], stack, 8448)]
    sid = b.struct("stacktrace_event", 2080, members)
    return struct_layout(Btf.parse(b.build()), sid)


def upstream_record(kstack_sz: int = 16, ustack_sz: int = 128) -> bytes:
    """gen_data.c's record: pid 0x1234, cpu 0x5678, comm test-comm, stacks
    of (1 << 16) | i."""
    record = struct.pack("<II16sii", 0x1234, 0x5678, b"test-comm", kstack_sz, ustack_sz)
    return record + struct.pack("<128Q", *((1 << 16) | i for i in range(128))) * 2


SPEC = StackTraceSpec("events", {}, True)


def test_reads_upstreams_record():
    sample = SampleReader(SPEC, profile_layout()).read(upstream_record(), 0)
    assert sample == Sample(0x1234, 0x5678, b"test-comm", (0x10000, 0x10001),
                            tuple((1 << 16) | i for i in range(16)))


def test_reads_at_an_offset_inside_a_ring():
    ring = bytes(8) + upstream_record() + bytes(8) + upstream_record(24, 8)
    reader = SampleReader(SPEC, profile_layout())
    assert reader.read(memoryview(ring), 8).kstack == (0x10000, 0x10001)
    second = reader.read(memoryview(ring), 8 + 2080 + 8)
    assert second.kstack == (0x10000, 0x10001, 0x10002) and second.ustack == (0x10000,)


@pytest.mark.parametrize(("size", "expected"), [(-14, None), (0, None), (4096, 128), (12, 1)])
def test_sizes_in_bytes_errors_and_overflow(size: int, expected: int | None):
    """bpf_get_stack's result: bytes; negative is an errno; more than the
    array holds is capped; a partial address is dropped."""
    sample = SampleReader(SPEC, profile_layout()).read(upstream_record(kstack_sz=size), 0)
    assert (None if sample.kstack is None else len(sample.kstack)) == expected


def test_field_map_renames_members():
    names = ("tgid", "cpu", "task", "ksz", "usz", "kernel", "user")
    spec = StackTraceSpec("events", dict(zip(("pid", "cpu_id", "comm", "kstack_sz", "ustack_sz", "kstack", "ustack"),
                                             names, strict=True)), True)
    sample = SampleReader(spec, profile_layout(names=names)).read(upstream_record(), 0)
    assert sample.pid == 0x1234 and sample.comm == b"test-comm" and len(sample.ustack or ()) == 16


def test_without_size_members_a_stack_ends_at_its_first_zero():
    layout = profile_layout(names=("pid", "cpu_id", "comm", "a", "b", "kstack", "ustack"))
    record = bytearray(upstream_record())
    struct.pack_into("<Q", record, 32 + 3 * 8, 0)  # kstack[3] = 0
    sample = SampleReader(SPEC, layout).read(bytes(record), 0)
    assert sample.kstack == (0x10000, 0x10001, 0x10002)
    assert len(sample.ustack or ()) == 128


def test_stack_ids_are_looked_up():
    looked = []

    def ids(stack_id: int) -> tuple[int, ...]:
        looked.append(stack_id)
        return (0xFFFF0000 + stack_id,)

    record = struct.pack("<II16siiqq", 7, 1, b"x", 0, 0, 42, -14)  # -EFAULT: no user stack
    sample = SampleReader(SPEC, profile_layout(ids=True), ids).read(record, 0)
    assert sample == Sample(7, 1, b"x", (0xFFFF0000 + 42,), None)
    assert looked == [42]


def test_stack_ids_without_a_stack_map_are_refused():
    with pytest.raises(PackageError, match="stack ids need a BPF_MAP_TYPE_STACK_TRACE map"):
        SampleReader(SPEC, profile_layout(ids=True))


@pytest.mark.parametrize(("field_map", "message"), [
    ({"kstack": "nope"}, "field_map names 'nope' for kstack, which struct stacktrace_event has not"),
    ({"pid": "comm"}, "stack_trace pid \\('comm' of struct stacktrace_event\\) must be an integer"),
    ({"comm": "pid"}, "must be a char array"),
    ({"kstack": "comm"}, "must be an array of 64-bit addresses or a stack id"),
])
def test_bad_field_maps_name_the_member(field_map: dict[str, str], message: str):
    with pytest.raises(PackageError, match=message):
        SampleReader(StackTraceSpec("events", field_map, True), profile_layout())


def test_a_struct_without_stacks_is_refused():
    layout = profile_layout(names=("pid", "cpu_id", "comm", "kstack_sz", "ustack_sz", "k", "u"))
    with pytest.raises(PackageError, match="has neither a kstack nor a ustack member"):
        SampleReader(SPEC, layout)


def package(change: Callable[[dict[str, Any]], None]) -> Package:
    doc = json.loads((UPSTREAM / "bootstrap.json").read_text())
    change(doc["meta"]["bpf_skel"]["maps"][0])
    return Package.from_json(json.dumps(doc), "p.json")


def test_specs_from_a_package():
    def change(m: dict[str, Any]) -> None:
        m["intepreter"] = {"stack_trace": {"field_map": {"kstack": "k"}, "with_symbols": False}}

    p = package(change)
    name = p.meta.raw["bpf_skel"]["maps"][0]["name"]
    assert stack_trace_specs(p) == [StackTraceSpec(name, {"kstack": "k"}, False)]
    assert stack_trace_specs(package(lambda m: m.update(intepreter={"stack_trace": {}}))) == [
        StackTraceSpec(name, {}, True)]  # upstream's defaults: own names, with symbols
    assert stack_trace_specs(package(lambda m: m.update(intepreter="default_struct"))) == []


@pytest.mark.parametrize(("value", "message"), [
    ({"stack_trace": []}, "must be an object"),
    ({"stack_trace": {"field_map": {"stack": "x"}}}, "unknown key 'stack'"),
    ({"stack_trace": {"field_map": {"pid": 1}}}, "'pid' must name a member"),
    ({"stack_trace": {"with_symbols": "yes"}}, "'with_symbols' must be true or false"),
    ({"stack_trace": {"symbols": True}}, "unknown key 'symbols'"),
    ({"stack_traces": {}}, "'intepreter' must be"),
    ("plain", "'intepreter' must be"),
])
def test_bad_interpreters_are_one_line(value: Any, message: str):
    with pytest.raises(PackageError, match=message):
        check_interpreter(value, "x.bpf.c:3")
    if isinstance(value, dict) and "stack_trace" in value:  # a package's map says the same, where it is
        with pytest.raises(PackageError, match=r"p.json: meta.bpf_skel.maps\[0\].intepreter.stack_trace.*" + message):
            stack_trace_specs(package(lambda m: m.update(intepreter=value)))


def test_good_interpreters_pass_unchanged():
    for value in ("default_struct", {"stack_trace": {}}, {"stack_trace": {"with_symbols": False}}):
        assert check_interpreter(value, "x") == value
