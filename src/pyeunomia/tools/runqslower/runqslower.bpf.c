// SPDX-License-Identifier: GPL-2.0
/// Trace high run queue latency: each task that waited for a CPU longer than a threshold.
///
/// The same hooks as runqlat (sched_wakeup, sched_wakeup_new, and
/// sched_switch for preempted tasks and the switch-in), as tp_btf programs
/// with raw_tp twins for kernels that lack BTF-typed tracepoints; CO-RE reads
/// of task_struct cover state -> __state (5.14). Only latencies above the
/// threshold leave the kernel, as ring buffer events. With -P each also
/// names the task switched out for the late one (PREV COMM, PREV TID), as
/// libbpf-tools' -P; the table shows those columns with -e, the runner's
/// extended-columns option (a global cannot choose columns).
/// @positional ["min_us"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "runqslower.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define TASK_RUNNING 0

char LICENSE[] SEC("license") = "GPL";

/// Trace this PID only (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Trace this TID only (0: all)
/// @cmdarg {"short": "t", "long": "tid", "metavar": "TID"}
const volatile pid_t targ_tid = 0;
/// Also record the previous task's name and TID (PREV COMM, PREV TID; the table shows them with -e)
/// @cmdarg {"short": "P", "long": "previous"}
const volatile bool targ_previous = false;
/// Report only latencies above this (default 10000 us; 0: every switch-in)
/// @cmdarg {"long": "min-us", "metavar": "MIN_US", "convert": {"name": "duration", "unit": "us"}}
const volatile __u64 min_us = 10000;

/* When each runnable task (by thread id) was queued: state between events. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

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

/* A task's cgroup v2 id, for a task that need not be current (a wakeup runs
 * in the waker's context): what bpf_get_current_cgroup_id() gives for current. */
static __always_inline u64 task_cgroup_id(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline void enqueue(struct task_struct *t)
{
	u32 tid = BPF_CORE_READ(t, pid);
	u64 now;

	if (!tid)
		return;
	if (targ_pid && BPF_CORE_READ(t, tgid) != targ_pid)
		return;
	if (targ_tid && tid != targ_tid)
		return;
	/* not queued, so its switch-in finds no start and costs one lookup */
	if (filter_cgroup_map && !container_allowed(task_cgroup_id(t)))
		return;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
}

static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tid = BPF_CORE_READ(next, pid);
	struct event *e;
	u64 *tsp, delta_us;

	/* Still on the run queue: preempted (whatever its state says: preempted
	 * between set_current_state() and schedule(), it is not dequeued), or
	 * TASK_RUNNING when it yields. libbpf-tools looks at the state only and
	 * misses the first case's wait. */
	if (preempt || task_state(prev) == TASK_RUNNING)
		enqueue(prev);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&start, &tid);
	if (min_us && delta_us <= min_us)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = tid;
	e->tgid = BPF_CORE_READ(next, tgid);
	e->delta_us = delta_us;
	e->cgroup_id = task_cgroup_id(next);
	bpf_probe_read_kernel_str(e->task, sizeof(e->task), next->comm);
	if (targ_previous) {
		e->prev_pid = BPF_CORE_READ(prev, pid);
		bpf_probe_read_kernel_str(e->prev_task, sizeof(e->prev_task), prev->comm);
	} else {
		e->prev_pid = 0;
		e->prev_task[0] = 0;
	}
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	enqueue(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
	enqueue(p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(preempt, prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	enqueue(p);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	enqueue(p);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(preempt, prev, next);
}
