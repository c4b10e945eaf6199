"""Which maps hold results, read from the instructions of real objects:
upstream's packages and programs clang compiles here."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyeunomia.format.mapuse import map_role, map_uses
from pyeunomia.format.objspec import ObjectSpec
from pyeunomia.source import open_package

from ..e2e.helpers import compile_bpf

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"

PATTERNS = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event { __u32 pid; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32);
         __type(value, struct event); } heap SEC(".maps");
#define MAP(kind, n, k, v, name) \
	struct { __uint(type, kind); __uint(max_entries, n); __type(key, k); __type(value, v); } name SEC(".maps")
MAP(BPF_MAP_TYPE_HASH, 64, __u32, __u64, seen);
MAP(BPF_MAP_TYPE_HASH, 64, __u32, __u64, last);
MAP(BPF_MAP_TYPE_HASH, 64, __u32, __u32, filter);
MAP(BPF_MAP_TYPE_ARRAY, 8, __u32, __u64, counts);

SEC("tracepoint/syscalls/sys_enter_write") int prog(void *ctx)
{
	__u32 zero = 0, pid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_ns(), *t, *n;
	struct event *e;

	if (!bpf_map_lookup_elem(&filter, &pid))   /* filled from user space */
		return 0;
	bpf_map_update_elem(&seen, &pid, &now, BPF_ANY);   /* written, never read: a result */
	t = bpf_map_lookup_elem(&last, &pid);              /* written whole and read back: state */
	if (t && now - *t < 1000)
		return 0;
	bpf_map_update_elem(&last, &pid, &now, BPF_ANY);
	n = bpf_map_lookup_elem(&counts, &zero);          /* counted in place: a result */
	if (n)
		__sync_fetch_and_add(n, 1);
	e = bpf_map_lookup_elem(&heap, &zero);            /* scratch for an event */
	if (!e)
		return 0;
	e->pid = pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, sizeof(*e));
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_upstream_runqlat_keeps_results_in_hists_and_state_in_start():
    spec = open_package(str(UPSTREAM / "runqlat.json")).spec
    uses = map_uses(spec)
    assert uses["start"] == {"lookup", "update", "delete"}
    assert uses["hists"] == {"lookup", "update", "inplace"}
    assert "cgroup_map" not in uses  # only bpf_current_task_under_cgroup reads it
    assert not map_role("start", uses["start"]).results
    assert map_role("hists", uses["hists"]).results


def test_upstream_bootstrap_deletes_its_start_times():
    uses = map_uses(open_package(str(UPSTREAM / "bootstrap.json")).spec)
    assert map_role("exec_start", uses["exec_start"]) == \
        ("exec_start", False, "state kept between events (the program deletes its entries)")


@pytest.fixture
def patterns(tmp_path: Path, tool) -> ObjectSpec:  # type: ignore[no-untyped-def]
    tool("clang")
    return ObjectSpec(compile_bpf(PATTERNS, tmp_path).read_bytes())


def test_what_the_code_does_with_each_map(patterns: ObjectSpec):
    uses = map_uses(patterns)
    assert uses["heap"] == {"lookup", "inplace", "output"}
    assert uses["seen"] == {"update"}
    assert uses["last"] == {"lookup", "update"}
    assert uses["filter"] == {"lookup"}
    assert uses["counts"] == {"lookup", "inplace"}
    roles = {name: map_role(name, u) for name, u in uses.items()}
    assert {name for name, r in roles.items() if r.results} == {"seen", "counts"}
    assert roles["heap"].why == "scratch space for building events"
    assert roles["last"].why == "state kept between events (written whole and read back)"
    assert roles["filter"].why == "the program never writes it (input filled from user space)"


def test_a_value_type_an_event_buffer_carries_is_scratch():
    assert map_role("heap", frozenset({"lookup", "inplace"}), event_value=True).why == \
        "scratch space for building events"
    assert map_role("never", None).why == "the program never writes it (input filled from user space)"
