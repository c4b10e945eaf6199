// SPDX-License-Identifier: GPL-2.0
/// Summarize soft irq event time (and counts) per vector.
///
/// softirq_entry and softirq_exit, classic tracepoints whose record (the
/// vector number) is the same on every kernel. The kernel counts a vector in
/// /proc/softirqs right where softirq_entry fires, so the counts here are
/// those of /proc/softirqs over the same time. Softirqs do not nest on one
/// CPU: one per-CPU slot carries the entry time to the exit.
/// @positional ["interval", "count"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "softirqs.bpf.h"

#define NR_VECTORS 10 /* HI to RCU, every kernel since 4.x */

/// Show distributions as histograms
/// @cmdarg {"short": "d", "long": "distributed"}
const volatile bool targ_dist = false;
/// Output in nanoseconds
/// @cmdarg {"short": "N", "long": "nanoseconds"}
const volatile bool targ_ns = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} starts SEC(".maps");

/// @table {"key": {"header": "SOFTIRQ", "decoder": "softirq"}, "sort": "time", "clear": true}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_VECTORS);
	__type(key, __u32);
	__type(value, struct softirq_stat);
} stats SEC(".maps");

/// @histogram {"unit": "usecs", "unit_option": {"targ_ns": "nsecs"}, "key": {"header": "softirq", "decoder": "softirq"}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_VECTORS);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

/* softirq_entry's and softirq_exit's record, the same on every kernel */
struct softirq_record {
	__u64 common;
	unsigned int vec;
};

static __always_inline __u32 log2l(__u64 v)
{
	__u32 r = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tracepoint/irq/softirq_entry")
int softirq_entry(struct softirq_record *ctx)
{
	__u32 zero = 0;
	__u64 *ts = bpf_map_lookup_elem(&starts, &zero);

	if (ts)
		*ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/irq/softirq_exit")
int softirq_exit(struct softirq_record *ctx)
{
	__u32 zero = 0, vec = ctx->vec;
	__u64 *ts = bpf_map_lookup_elem(&starts, &zero), delta;

	if (!ts || !*ts || vec >= NR_VECTORS)
		return 0; /* entered before we attached */
	delta = bpf_ktime_get_ns() - *ts;
	*ts = 0;
	if (targ_dist) {
		struct hist *h, empty = {};
		__u32 slot;

		h = bpf_map_lookup_elem(&hists, &vec);
		if (!h) {
			bpf_map_update_elem(&hists, &vec, &empty, BPF_NOEXIST);
			h = bpf_map_lookup_elem(&hists, &vec);
			if (!h)
				return 0;
		}
		slot = log2l(targ_ns ? delta : delta / 1000);
		if (slot >= MAX_SLOTS)
			slot = MAX_SLOTS - 1;
		__sync_fetch_and_add(&h->slots[slot], 1);
		return 0;
	}
	struct softirq_stat *st, empty = {};

	st = bpf_map_lookup_elem(&stats, &vec);
	if (!st) {
		bpf_map_update_elem(&stats, &vec, &empty, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stats, &vec);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->count, 1);
	__sync_fetch_and_add(&st->time, delta);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
