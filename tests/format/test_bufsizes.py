"""The record sizes a program writes into each event buffer, read from its
instructions and relocations (format/bufsizes.py)."""

from __future__ import annotations

import os

from pyeunomia.format.bufsizes import buffer_writes
from pyeunomia.format.elf import ElfFile
from pyeunomia.source import open_package
from tests.conftest import require
from tests.e2e.helpers import UPSTREAM, compile_bpf


def test_upstream_assets():
    multiple = open_package(str(UPSTREAM / "multiple_export_ringbuf.json"))
    writes = buffer_writes(multiple.spec.elf)
    assert {m: (w.sizes, w.unknown, w.size) for m, w in writes.items()} == {
        "rb_exec": ({152}, 0, 152), "rb_exit": ({40}, 0, 40)}
    bootstrap = open_package(str(UPSTREAM / "bootstrap.json"))
    assert buffer_writes(bootstrap.spec.elf)["rb"].size == 176
    assert buffer_writes(open_package(str(UPSTREAM / "runqlat.json")).spec.elf) == {}


SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct small { int a; };
struct big { long long a, b, c; char s[40]; };

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } fixed SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } varied SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } computed SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} perf SEC(".maps");

volatile int knob;

SEC("tracepoint/syscalls/sys_enter_getpid")
int prog(void *ctx)
{
	struct big b = {};
	struct small s = {.a = knob};
	struct big *r = bpf_ringbuf_reserve(&fixed, sizeof(*r), 0);

	if (r)
		bpf_ringbuf_submit(r, 0);
	bpf_ringbuf_output(&varied, &s, sizeof(s), 0);
	if (knob)
		bpf_ringbuf_output(&varied, &b, sizeof(b), 0);
	bpf_ringbuf_output(&computed, &b, (knob & 31) + 8, 0);
	bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &b, sizeof(b));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_constant_varied_and_computed_sizes(tool, tmp_path):
    tool("clang")
    require(os.path.exists("/usr/include/bpf/bpf_helpers.h"), "libbpf-dev is not installed (make test installs it)")
    obj = compile_bpf(SOURCE, tmp_path)
    writes = buffer_writes(ElfFile(obj.read_bytes()))
    assert writes["fixed"].size == 64
    assert writes["varied"].sizes == {4, 64} and writes["varied"].size is None
    assert writes["computed"].sizes == set() and writes["computed"].unknown == 1
    assert writes["perf"].size == 64


def test_a_huge_section_is_not_read():
    """A package is not trusted: a section of more than MAX_INSNS instructions is
    left unread (its sizes unknown) rather than costing memory in proportion."""
    from pyeunomia.format import bufsizes

    multiple = open_package(str(UPSTREAM / "multiple_export_ringbuf.json"))
    old = bufsizes.MAX_INSNS
    try:
        bufsizes.MAX_INSNS = 8  # the handlers are longer than 8 instructions
        assert buffer_writes(multiple.spec.elf) == {}
    finally:
        bufsizes.MAX_INSNS = old
