// SPDX-License-Identifier: GPL-2.0
/// Summarize run queue (scheduler) latency as a histogram: how long runnable tasks waited for a CPU.
///
/// A task becomes runnable at sched_wakeup / sched_wakeup_new, or again at
/// sched_switch when it is switched out still TASK_RUNNING (preempted); the
/// time until sched_switch switches it in is its run-queue latency. These are
/// tracepoints of every kernel since 2.6: the BTF-typed tp_btf programs load
/// where the kernel takes them (5.5+), their raw_tp twins elsewhere (the
/// loader picks one per event). Task fields are read with CO-RE, so the same
/// object runs where task_struct.state became __state (5.14).
/// @positional ["interval", "count"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "runqlat.bpf.h"
#include "../include/container_filter.bpf.h"

#define TASK_RUNNING 0

char LICENSE[] SEC("license") = "GPL";

/// Show the histogram in milliseconds rather than microseconds
/// @cmdarg {"short": "m", "long": "milliseconds"}
const volatile bool targ_ms = false;
/// Print a histogram per process ID
/// @cmdarg {"short": "P", "long": "pids"}
const volatile bool targ_per_process = false;
/// Print a histogram per thread ID
/// @cmdarg {"short": "L", "long": "tids"}
const volatile bool targ_per_thread = false;
/// Print a histogram per PID namespace (keyed by its inode number)
/// @cmdarg {"long": "pidnss"}
const volatile bool targ_per_pidns = false;
/// Trace this PID only (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_tgid = 0;
/// Trace only tasks in this cgroup (a cgroup v2 directory)
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "/sys/fs/cgroup/unified", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

/* When each runnable task (by thread id) was queued: state between events. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

static struct hist zero;

/// @histogram {"unit": "usecs", "unit_option": {"targ_ms": "msecs"}, "key": {"header": "pid", "when": ["targ_per_process", "targ_per_thread", "targ_per_pidns"]}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

/* task_struct.state before 5.14 */
struct task_struct___pre514 {
	volatile long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* The inode number of the PID namespace t's pid lives in (its deepest level). */
static __always_inline u32 pid_namespace(struct task_struct *t)
{
	struct pid *pid = BPF_CORE_READ(t, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};

	bpf_core_read(&upid, sizeof(upid), &pid->numbers[level]);
	return BPF_CORE_READ(upid.ns, ns.inum);
}

static __always_inline bool wanted(struct task_struct *t)
{
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

static __always_inline void enqueue(struct task_struct *t)
{
	u32 tid = BPF_CORE_READ(t, pid);
	u64 now;

	if (!tid || !wanted(t))
		return;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
}

static __always_inline u32 log2_slot(u64 v)
{
	u32 slot = 0;

	/* floor(log2(v)) in at most 64 steps, halving the range each time */
	if (v >> 32) { v >>= 32; slot += 32; }
	if (v >> 16) { v >>= 16; slot += 16; }
	if (v >> 8) { v >>= 8; slot += 8; }
	if (v >> 4) { v >>= 4; slot += 4; }
	if (v >> 2) { v >>= 2; slot += 2; }
	if (v >> 1) slot += 1;
	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	enqueue(p);
	return 0;
}

static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tid = BPF_CORE_READ(next, pid), key = (u32)-1;
	struct hist *h;
	u64 *tsp, delta;

	/* Still on the run queue: preempted (whatever its state says: preempted
	 * between set_current_state() and schedule(), it is not dequeued), or
	 * TASK_RUNNING when it yields. libbpf-tools looks at the state only and
	 * misses the first case's wait. */
	if (preempt || task_state(prev) == TASK_RUNNING)
		enqueue(prev);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &tid);
	if ((s64)delta < 0)
		return 0;
	if (targ_per_process)
		key = BPF_CORE_READ(next, tgid);
	else if (targ_per_thread)
		key = tid;
	else if (targ_per_pidns)
		key = pid_namespace(next);
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return 0;
		if (targ_per_process || targ_per_thread)
			bpf_probe_read_kernel_str(h->comm, sizeof(h->comm), next->comm);
	}
	delta /= targ_ms ? 1000000 : 1000;
	__sync_fetch_and_add(&h->slots[log2_slot(delta)], 1);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(preempt, prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(preempt, prev, next);
}
