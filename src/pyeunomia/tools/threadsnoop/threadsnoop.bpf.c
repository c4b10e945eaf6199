// SPDX-License-Identifier: GPL-2.0
/// Trace new threads: the process, the new thread's id and name.
///
/// task/task_newtask fires in the creating thread for every task
/// copy_process() makes, with the new task's id and clone flags; those with
/// CLONE_THREAD are threads. A tracepoint with the same layout on every
/// kernel we support, it sees threads of every library and language, where
/// bpftrace's threadsnoop.bt sees only libpthread's pthread_create (whose
/// start function it prints: that lives only in the creator's user memory,
/// at a libc-specific offset, so it is not shown here).
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "threadsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define CLONE_THREAD 0x00010000

/// Process ID to trace (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Events the ring had no room for, counted per CPU: never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

SEC("tracepoint/task/task_newtask")
int task_newtask(struct trace_event_raw_task_newtask *ctx)
{
	__u64 flags = ctx->clone_flags;
	__u64 id = bpf_get_current_pid_tgid();

	if (!(flags & CLONE_THREAD))
		return 0;
	if (targ_pid && targ_pid != (id >> 32))
		return 0;
	__u64 cgid = bpf_get_current_cgroup_id();

	if (!container_allowed(cgid))
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			(*n)++;
		return 0;
	}
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = ctx->pid;
	e->creator_tid = (__u32)id;
	e->clone_flags = flags;
	e->cgroup_id = cgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
