// SPDX-License-Identifier: GPL-2.0
/// Summarize hard irq event time (or counts, -C) per handler name.
///
/// irq_handler_entry and irq_handler_exit, classic tracepoints: the handler's
/// name is in the entry's record (a __data_loc string) on every kernel, so no
/// irqaction pointer or BTF is needed, and a shared line counts once per
/// handler it ran, as the kernel's tracepoint fires. Hard irq handlers do not
/// nest on one CPU, so one per-CPU slot carries the entry time to the exit.
/// With -C only the entry runs its code: no timing.
/// @positional ["interval", "count"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "hardirqs.bpf.h"

/// Show event counts instead of timing
/// @cmdarg {"short": "C", "long": "count"}
const volatile bool targ_count = false;
/// Show distributions as histograms
/// @cmdarg {"short": "d", "long": "distributed"}
const volatile bool targ_dist = false;
/// Output in nanoseconds
/// @cmdarg {"short": "N", "long": "nanoseconds"}
const volatile bool targ_ns = false;
/// Trace only while a process of this cgroup was interrupted
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "CG", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

struct start {
	__u64 ts;
	struct irq_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct start);
} starts SEC(".maps");

/// @table {"key": {"members": {"name": {"header": "HARDIRQ"}}}, "columns": {"count": {"header": "COUNT"}, "time": {"header": "TOTAL_usecs", "decoder": {"name": "duration", "unit": "ns", "show": "us"}, "when": "!targ_count"}}, "sort": "count", "clear": true}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct irq_key);
	__type(value, struct irq_stat);
} infos SEC(".maps");

/// @histogram {"unit": "usecs", "unit_option": {"targ_ns": "nsecs"}, "key": {"members": {"name": {"header": "hardirq"}}}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct irq_key);
	__type(value, struct hist);
} hists SEC(".maps");

/* irq_handler_entry's record, the same on every kernel */
struct irq_entry_record {
	__u64 common;
	int irq;
	__u32 name_loc; /* __data_loc: the name's offset in the record (low 16 bits) and length */
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

static __always_inline struct irq_stat *stat_of(struct irq_key *key)
{
	struct irq_stat *st, zero = {};

	st = bpf_map_lookup_elem(&infos, key);
	if (st)
		return st;
	bpf_map_update_elem(&infos, key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&infos, key);
}

SEC("tracepoint/irq/irq_handler_entry")
int irq_handler_entry(struct irq_entry_record *ctx)
{
	struct irq_key key = {};
	struct start *s;
	__u32 zero = 0;

	if (targ_cgroup && bpf_get_current_cgroup_id() != targ_cgroup)
		return 0;
	if (targ_count) {
		bpf_probe_read_kernel_str(key.name, sizeof(key.name), (void *)ctx + (ctx->name_loc & 0xffff));
		struct irq_stat *st = stat_of(&key);

		if (st)
			__sync_fetch_and_add(&st->count, 1);
		return 0;
	}
	s = bpf_map_lookup_elem(&starts, &zero);
	if (!s)
		return 0;
	bpf_probe_read_kernel_str(s->key.name, sizeof(s->key.name), (void *)ctx + (ctx->name_loc & 0xffff));
	s->ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/irq/irq_handler_exit")
int irq_handler_exit(void *ctx)
{
	struct start *s;
	__u32 zero = 0;
	__u64 delta;

	if (targ_count)
		return 0;
	s = bpf_map_lookup_elem(&starts, &zero);
	if (!s || !s->ts)
		return 0; /* entered before we attached, or filtered out */
	delta = bpf_ktime_get_ns() - s->ts;
	struct irq_key key = s->key;

	/* all zero again: an all-zero per-CPU slot is not printed at exit as a result */
	__builtin_memset(s, 0, sizeof(*s));
	if (targ_dist) {
		struct hist *h, empty = {};
		__u32 slot;

		h = bpf_map_lookup_elem(&hists, &key);
		if (!h) {
			bpf_map_update_elem(&hists, &key, &empty, BPF_NOEXIST);
			h = bpf_map_lookup_elem(&hists, &key);
			if (!h)
				return 0;
		}
		slot = log2l(targ_ns ? delta : delta / 1000);
		if (slot >= MAX_SLOTS)
			slot = MAX_SLOTS - 1;
		__sync_fetch_and_add(&h->slots[slot], 1);
		return 0;
	}
	struct irq_stat *st = stat_of(&key);

	if (st) {
		__sync_fetch_and_add(&st->count, 1);
		__sync_fetch_and_add(&st->time, delta);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
