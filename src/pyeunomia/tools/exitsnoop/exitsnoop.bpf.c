// SPDX-License-Identifier: GPL-2.0
/// Trace process exits: who ended, its age, and its exit code or the signal that killed it.
///
/// sched/sched_process_exit runs in the exiting task itself, after do_exit()
/// has stored the wait status in task->exit_code and while the task still
/// has its pid, parent and cgroup: one tracepoint, stable on every kernel we
/// support, and a thread filter that keeps a process's other threads out of
/// the ring (libbpf-tools' choice too; -T traces every thread).
/// @runner {"timestamp": "t"}
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "exitsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

/// Process ID to trace (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Trace error exits only (a non-zero exit code, or a signal)
/// @cmdarg {"short": "x", "long": "failed"}
const volatile bool trace_failed_only = false;
/// Trace by thread: every thread's exit, not only the process's last
/// @cmdarg {"short": "T", "long": "threaded"}
const volatile bool trace_by_thread = false;
/* Exact cgroup, not its descendants: bpf_get_current_ancestor_cgroup_id is
 * a tracing helper only from Linux 5.14, and this must load on 5.10. */
/// Trace processes in this cgroup only (a cgroup v2 path; that cgroup itself, not its children)
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "PATH", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

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

SEC("tracepoint/sched/sched_process_exit")
int sched_process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;

	if (targ_pid && targ_pid != pid)
		return 0;
	__u64 cgid = bpf_get_current_cgroup_id();

	if (targ_cgroup && cgid != targ_cgroup)
		return 0;
	if (!container_allowed(cgid))
		return 0;
	/* A process ends with its last thread, not with its leader: the other
	 * threads (and a leader that left early) are not process exits. */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!trace_by_thread && BPF_CORE_READ(task, signal, live.counter) > 0)
		return 0;
	unsigned int status = BPF_CORE_READ(task, exit_code);
	if (trace_failed_only && status == 0)
		return 0;

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			(*n)++;
		return 0;
	}
	e->start_time = BPF_CORE_READ(task, start_time);
	e->exit_time = bpf_ktime_get_ns();
	e->age = e->exit_time - e->start_time;
	e->pid = pid;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_status = status;
	e->exit_code = (status >> 8) & 0xff;
	e->sig = status & 0x7f;
	e->cgroup_id = cgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
