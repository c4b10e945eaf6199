// SPDX-License-Identifier: GPL-2.0
/// Summarize on-CPU time per task as a histogram: how long tasks ran each time they were switched in.
///
/// One hook, sched_switch: the task switched in starts a period, the task
/// switched out ends it (with -O the other way round: time spent off the
/// CPU). A tp_btf program where the kernel takes it (5.5+), its raw_tp twin
/// elsewhere, with CO-RE reads of task_struct so one object runs on 5.10 to
/// 6.18. The histogram is kept in the kernel; nothing per event leaves it.
/// @positional ["interval", "count"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "cpudist.bpf.h"
#include "../include/container_filter.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/// Measure off-CPU time instead of on-CPU time
/// @cmdarg {"short": "O", "long": "offcpu"}
const volatile bool targ_offcpu = false;
/// Show the histogram in milliseconds rather than microseconds
/// @cmdarg {"short": "m", "long": "milliseconds"}
const volatile bool targ_ms = false;
/// Print a histogram per process ID
/// @cmdarg {"short": "P", "long": "pids"}
const volatile bool targ_per_process = false;
/// Print a histogram per thread ID
/// @cmdarg {"short": "L", "long": "tids"}
const volatile bool targ_per_thread = false;
/// Trace this PID only (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_tgid = 0;
/// Trace only tasks in this cgroup (a cgroup v2 directory)
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "/sys/fs/cgroup/unified", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

/* When each thread's current period (on or off the CPU) began: state between
 * events. LRU: entries are overwritten, not deleted, so those of threads
 * that exited give way to new ones instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

static struct hist zero;

/// @histogram {"unit": "usecs", "unit_option": {"targ_ms": "msecs"}, "key": {"header": "pid", "when": ["targ_per_process", "targ_per_thread"]}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

static __always_inline bool wanted(struct task_struct *t, u32 tid)
{
	if (!tid)
		return false; /* the idle task */
	if (targ_tgid && BPF_CORE_READ(t, tgid) != targ_tgid)
		return false;
	/* the task's own cgroup v2 id, not current's: wakeups run in the waker */
	if (targ_cgroup || filter_cgroup_map) {
		u64 cgid = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);

		if (targ_cgroup && cgid != targ_cgroup)
			return false;
		if (!container_allowed(cgid))
			return false;
	}
	return true;
}

static __always_inline u32 log2_slot(u64 v)
{
	u32 slot = 0;

	if (v >> 32) { v >>= 32; slot += 32; }
	if (v >> 16) { v >>= 16; slot += 16; }
	if (v >> 8) { v >>= 8; slot += 8; }
	if (v >> 4) { v >>= 4; slot += 4; }
	if (v >> 2) { v >>= 2; slot += 2; }
	if (v >> 1) slot += 1;
	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

static __always_inline void begin(struct task_struct *t, u64 now)
{
	u32 tid = BPF_CORE_READ(t, pid);

	if (wanted(t, tid))
		bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
	else if (targ_tgid || targ_cgroup || filter_cgroup_map)
		bpf_map_delete_elem(&start, &tid); /* left a filter's scope: its old start must not count */
}

static __always_inline void end(struct task_struct *t, u64 now)
{
	u32 tid = BPF_CORE_READ(t, pid), key = (u32)-1;
	struct hist *h;
	u64 *tsp, delta;

	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return;
	/* Not deleted: the task's next switch in overwrites it (begin), and a
	 * delete per switch was ~100 ns of this program's 731 (bpf_stats). */
	delta = now - *tsp;
	if ((s64)delta < 0)
		return;
	if (targ_per_process)
		key = BPF_CORE_READ(t, tgid);
	else if (targ_per_thread)
		key = tid;
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return;
		if (targ_per_process || targ_per_thread)
			bpf_probe_read_kernel_str(h->comm, sizeof(h->comm), t->comm);
	}
	delta /= targ_ms ? 1000000 : 1000;
	__sync_fetch_and_add(&h->slots[log2_slot(delta)], 1);
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next)
{
	u64 now = bpf_ktime_get_ns();

	if (targ_offcpu) {
		begin(prev, now);
		end(next, now);
	} else {
		end(prev, now);
		begin(next, now);
	}
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next);
}
