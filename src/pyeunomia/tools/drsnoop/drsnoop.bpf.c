// SPDX-License-Identifier: GPL-2.0
/// Trace direct page reclaim: which process stalled to free memory, for how long, and how many pages it got.
///
/// Hooks vmscan's mm_vmscan_direct_reclaim_begin/end (an allocation reclaims
/// itself when free memory runs low) and mm_vmscan_memcg_reclaim_begin/end (a
/// memory cgroup over its limit reclaims from itself on a charge), classic
/// tracepoints on every kernel (5.10, 6.1, 6.12 and later) with the same
/// records: order and gfp at the start, nr_reclaimed at the end. The begin
/// stamps the time per thread in a hash map, the end emits the event, as
/// libbpf-tools' drsnoop does (it hooks only the direct pair).
/// @runner {"duration": "d"}
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "drsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Trace only this thread id (0: all)
/// @cmdarg {"short": "t", "long": "tid", "metavar": "TID"}
const volatile pid_t targ_tid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Events the ring had no room for, reported by the reader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Begin time per thread: state between begin and end, not a result. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct start_t);
} start SEC(".maps");

/* The records, read through CO-RE on the kernel's own types. */
struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template___x {
	int order;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_vmscan_direct_reclaim_end_template___x {
	unsigned long nr_reclaimed;
} __attribute__((preserve_access_index));

static __always_inline int begin(int order, __u32 memcg)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = id;
	struct start_t s = {};

	if (targ_pid && pid != targ_pid)
		return 0;
	if (targ_tid && tid != targ_tid)
		return 0;
	if (!container_allowed(bpf_get_current_cgroup_id()))
		return 0;
	s.ts = bpf_ktime_get_ns();
	s.order = order;
	s.memcg = memcg;
	bpf_map_update_elem(&start, &tid, &s, BPF_ANY);
	return 0;
}

static __always_inline int end(unsigned long nr_reclaimed)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	struct start_t *s = bpf_map_lookup_elem(&start, &tid);
	struct event *e;

	if (!s)
		return 0; /* began before we attached, or filtered out */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		bpf_map_delete_elem(&start, &tid);
		return 0;
	}
	e->ts = bpf_ktime_get_boot_ns();
	e->delta_ns = bpf_ktime_get_ns() - s->ts;
	e->order = s->order;
	e->memcg = s->memcg;
	e->pid = id >> 32;
	e->tid = tid;
	e->nr_reclaimed = nr_reclaimed;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int direct_reclaim_begin(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template___x *ctx)
{
	return begin(BPF_CORE_READ(ctx, order), 0);
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int direct_reclaim_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template___x *ctx)
{
	return end(BPF_CORE_READ(ctx, nr_reclaimed));
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int memcg_reclaim_begin(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template___x *ctx)
{
	return begin(BPF_CORE_READ(ctx, order), 1);
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int memcg_reclaim_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template___x *ctx)
{
	return end(BPF_CORE_READ(ctx, nr_reclaimed));
}

char LICENSE[] SEC("license") = "GPL";
