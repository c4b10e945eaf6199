// SPDX-License-Identifier: GPL-2.0
/// Profile CPU usage by sampling stack traces at a timed interval.
///
/// A perf_event program on the software cpu-clock event of every CPU (the
/// runner opens it at -F HZ, default 49: no PMU needed, present on every
/// kernel): each sample takes the running task's kernel and user stacks as
/// ids into a stack trace map and sends one ring buffer event; the runner
/// prints them symbolized and writes --folded stacks or a --flamegraph.
/// The idle task is left out unless -I.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "profile.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define MAX_STACK_DEPTH 127

char LICENSE[] SEC("license") = "GPL";

/// Profile this PID only (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Profile this TID only (0: all)
/// @cmdarg {"short": "L", "long": "tid", "metavar": "TID"}
const volatile pid_t targ_tid = 0;
/// Show stacks from user space only (no kernel space stacks)
/// @cmdarg {"short": "U", "long": "user-stacks-only"}
const volatile bool user_stacks_only = false;
/// Show stacks from kernel space only (no user space stacks)
/// @cmdarg {"short": "K", "long": "kernel-stacks-only"}
const volatile bool kernel_stacks_only = false;
/// Include CPU idle stacks
/// @cmdarg {"short": "I", "long": "include-idle"}
const volatile bool include_idle = false;
/// Sample this CPU only (-1: all)
/// @cmdarg {"short": "C", "long": "cpu", "metavar": "CPU"}
const volatile int targ_cpu = -1;
/// Trace only processes in this cgroup (a cgroup v2 directory)
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "/sys/fs/cgroup/unified", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(u64));
	__uint(max_entries, 10240);
} stackmap SEC(".maps");

/// @intepreter {"stack_trace": {"field_map": {"pid": "tgid", "cpu_id": "cpu", "comm": "comm", "kstack": "kern_stack_id", "ustack": "user_stack_id"}}}
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

SEC("perf_event")
int do_perf_event(void *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = id;
	u32 cpu = bpf_get_smp_processor_id();
	struct event *e;
	u64 cgid;

	if (!include_idle && tid == 0)
		return 0;
	if (targ_pid && tgid != targ_pid)
		return 0;
	if (targ_tid && tid != targ_tid)
		return 0;
	if (targ_cpu >= 0 && cpu != (u32)targ_cpu)
		return 0;
	cgid = bpf_get_current_cgroup_id();
	if (targ_cgroup && cgid != targ_cgroup)
		return 0;
	if (!container_allowed(cgid))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->tgid = tgid;
	e->tid = tid;
	e->cpu = cpu;
	e->cgroup_id = cgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->kern_stack_id = user_stacks_only ? -1 : bpf_get_stackid(ctx, &stackmap, 0);
	e->user_stack_id = kernel_stacks_only ? -1 : bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}
