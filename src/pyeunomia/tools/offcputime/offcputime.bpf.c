// SPDX-License-Identifier: GPL-2.0
/// Summarize off-CPU time by stack trace: where threads blocked, and for how long.
///
/// sched_switch is the one hook: the thread switched out has its kernel and
/// user stacks taken there (it is still current, so bpf_get_stackid walks
/// its own stacks) and kept with the time; when sched_switch switches it back
/// in, the period ends and, if it lasted between the minimum and maximum
/// block times, one event carries both stack ids and the time in us. The
/// runner prints the stacks symbolized, and --folded / --flamegraph give
/// the folded stacks and a flame graph weighted by the time (the
/// stack_trace mapping's `weight`), as libbpf-tools' offcputime sums it. A tp_btf program where the kernel
/// takes it (5.5+), its raw_tp twin elsewhere; CO-RE reads of task_struct
/// (state -> __state in 5.14).
/// @positional ["duration"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "offcputime.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define PF_KTHREAD 0x00200000
#define MAX_STACK_DEPTH 127

char LICENSE[] SEC("license") = "GPL";

/// Trace this PID only (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_tgid = 0;
/// Trace this TID only (0: all)
/// @cmdarg {"short": "t", "long": "tid", "metavar": "TID"}
const volatile pid_t targ_pid = 0;
/// User threads only (no kernel threads)
/// @cmdarg {"short": "u", "long": "user-threads-only"}
const volatile bool user_threads_only = false;
/// Kernel threads only (no user threads)
/// @cmdarg {"short": "k", "long": "kernel-threads-only"}
const volatile bool kernel_threads_only = false;
/// Show stacks from user space only (no kernel space stacks)
/// @cmdarg {"short": "U", "long": "user-stacks-only"}
const volatile bool user_stacks_only = false;
/// Show stacks from kernel space only (no user space stacks)
/// @cmdarg {"short": "K", "long": "kernel-stacks-only"}
const volatile bool kernel_stacks_only = false;
/// The amount of time in microseconds over which we store traces (default 1)
/// @cmdarg {"short": "m", "long": "min-block-time", "metavar": "MIN-BLOCK-TIME", "convert": {"name": "duration", "unit": "us"}}
const volatile __u64 min_block_us = 1;
/// The amount of time in microseconds under which we store traces (default U64_MAX)
/// @cmdarg {"short": "M", "long": "max-block-time", "metavar": "MAX-BLOCK-TIME", "convert": {"name": "duration", "unit": "us"}}
const volatile __u64 max_block_us = (__u64)-1;
/// Filter on this thread state bitmask (1: TASK_INTERRUPTIBLE, 2: TASK_UNINTERRUPTIBLE; -1: any)
/// @cmdarg {"long": "state", "metavar": "STATE"}
const volatile long targ_state = -1;

/* Read by the runner only (@resize): it sizes stackmap before the load */
/// The number of unique stack traces that can be stored and displayed (default 10240)
/// @cmdarg {"long": "stack-storage-size", "metavar": "STACK-STORAGE-SIZE"}
/// @resize {"map": "stackmap"}
const volatile __u32 stack_storage_size = 0;
/// The limit for both kernel and user stack traces (default 127)
/// @cmdarg {"long": "perf-max-stack-depth", "metavar": "PERF-MAX-STACK-DEPTH"}
/// @resize {"map": "stackmap", "value_size": 8}
const volatile __u32 perf_max_stack_depth = 0;

/* A thread switched out: when, and where it blocked. State between events. */
struct off_start {
	u64 ts;
	s64 kern_stack_id;
	s64 user_stack_id;
	u64 cgroup_id;
	u32 state;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct off_start);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(u64));
	__uint(max_entries, 10240);
} stackmap SEC(".maps");

/* weight: the folded stacks and the flame graph sum off-CPU microseconds, as libbpf-tools' folded output */
/// @intepreter {"stack_trace": {"field_map": {"pid": "tgid", "cpu_id": "cpu", "comm": "comm", "kstack": "kern_stack_id", "ustack": "user_stack_id", "weight": "delta_us"}}}
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
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

static __always_inline bool wanted(struct task_struct *t, long state)
{
	u32 tid = BPF_CORE_READ(t, pid);
	bool kthread = BPF_CORE_READ(t, flags) & PF_KTHREAD;

	if (!tid)
		return false; /* the idle task */
	if (targ_tgid && BPF_CORE_READ(t, tgid) != targ_tgid)
		return false;
	if (targ_pid && tid != targ_pid)
		return false;
	if (user_threads_only && kthread)
		return false;
	if (kernel_threads_only && !kthread)
		return false;
	if (targ_state != -1 && !(state & targ_state))
		return false;
	return true;
}

static __always_inline int on_switch(void *ctx, struct task_struct *prev, struct task_struct *next)
{
	u32 tid = BPF_CORE_READ(prev, pid);
	long state = task_state(prev);
	struct off_start s = {}, *sp;
	struct event *e;
	u64 now = bpf_ktime_get_ns(), delta_us;

	/* prev is still current here: its cgroup is current's, and its stacks are the ones walked */
	if (wanted(prev, state) && container_allowed(s.cgroup_id = bpf_get_current_cgroup_id())) {
		s.ts = now;
		s.state = state;
		/* skip 2 frames: this program and bpf_trace_run4 that called it (then
		 * __traceiter_sched_switch when the tracepoint has several probes, or __schedule) */
		s.kern_stack_id = user_stacks_only ? -1 : bpf_get_stackid(ctx, &stackmap, 2);
		s.user_stack_id = kernel_stacks_only ? -1 : bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
		bpf_map_update_elem(&start, &tid, &s, BPF_ANY);
	}
	tid = BPF_CORE_READ(next, pid);
	sp = bpf_map_lookup_elem(&start, &tid);
	if (!sp)
		return 0;
	delta_us = (now - sp->ts) / 1000;
	if (delta_us >= min_block_us && delta_us <= max_block_us) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			e->tgid = BPF_CORE_READ(next, tgid);
			e->tid = tid;
			bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), next->comm);
			e->kern_stack_id = sp->kern_stack_id;
			e->user_stack_id = sp->user_stack_id;
			e->delta_us = delta_us;
			e->state = sp->state;
			e->cgroup_id = sp->cgroup_id;
			e->cpu = bpf_get_smp_processor_id();
			bpf_ringbuf_submit(e, wakeup_flags(&events));
		}
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, next);
}
