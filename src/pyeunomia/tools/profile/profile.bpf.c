// SPDX-License-Identifier: GPL-2.0
/// Profile CPU usage by sampling stack traces at a timed interval.
///
/// A perf_event program on the software cpu-clock event of every CPU (the
/// runner opens it at -F HZ, default 49: no PMU needed, present on every
/// kernel): each sample takes the running task's kernel and user stacks as
/// ids into a stack trace map and sends one ring buffer event; the runner
/// prints them symbolized and writes --folded stacks or a --flamegraph.
/// The idle task is left out unless -I.
/// @runner {"frequency": "F", "folded": "f", "delimited": "d"}
/// @positional ["duration"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "profile.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define MAX_STACK_DEPTH 127
#define MAX_PIDS 16 /* -p and -L take up to this many, comma-separated */

char LICENSE[] SEC("license") = "GPL";

/// Profile processes with one or more comma-separated PIDs only
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pids[MAX_PIDS] = {};
/// Profile threads with one or more comma-separated TIDs only
/// @cmdarg {"short": "L", "long": "tid", "metavar": "TID"}
const volatile pid_t targ_tids[MAX_PIDS] = {};
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

/* Read by the runner only (@resize): it sizes stackmap before the load */
/// The number of unique stack traces that can be stored and displayed (default 10240)
/// @cmdarg {"long": "stack-storage-size", "metavar": "STACK-STORAGE-SIZE"}
/// @resize {"map": "stackmap"}
const volatile __u32 stack_storage_size = 0;
/// The limit for both kernel and user stack traces (default 127)
/// @cmdarg {"long": "perf-max-stack-depth", "metavar": "PERF-MAX-STACK-DEPTH"}
/// @resize {"map": "stackmap", "value_size": 8}
const volatile __u32 perf_max_stack_depth = 0;

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

/* Whether id is in a -p/-L list (read up to its first 0); an empty list takes every id */
static __always_inline bool listed(const volatile pid_t *list, u32 id)
{
	if (!list[0])
		return true;
	for (int i = 0; i < MAX_PIDS; i++) {
		if (!list[i])
			return false;
		if ((u32)list[i] == id)
			return true;
	}
	return false;
}

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
	if (!listed(targ_pids, tgid) || !listed(targ_tids, tid))
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
