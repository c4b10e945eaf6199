// SPDX-License-Identifier: GPL-2.0
/// Trace stat calls: who asked about which path, and the result.
///
/// Hooks the syscalls tracepoints of stat, lstat, fstatat (newfstatat), statx
/// and statfs, which every kernel from 5.10 on has with the same layout. The
/// enter program keeps the path's user pointer per thread; the exit program
/// reads the name there, after the kernel has faulted the page in (a read at
/// enter can find it not yet present and give an empty path), and emits one
/// event with the result. No helper newer than 5.8 is needed, so one program
/// set serves every kernel of the matrix.
/// @runner {"elapsed": "t"}
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "statsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;

/// Only show failed stats
/// @cmdarg {"short": "x", "long": "failed"}
const volatile bool targ_failed = false;

struct stat_args {
	const char *path;
	unsigned int syscall;
};

/* A stat in flight, from its enter to its exit: one per thread at most.
 * Preallocated (the default), as tracing programs' hash maps should be. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct stat_args);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Events the ring had no room for: counted, never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline int enter(const char *path, unsigned int syscall)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct stat_args a = {.path = path, .syscall = syscall};

	if (targ_pid && targ_pid != (pid_t)(id >> 32))
		return 0;
	if (!container_allowed(bpf_get_current_cgroup_id()))
		return 0;
	bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int leave(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct stat_args *a = bpf_map_lookup_elem(&inflight, &tid);
	struct event *e;

	if (!a)
		return 0; /* filtered out at enter, or entered before we attached */
	struct stat_args copy = *a;

	bpf_map_delete_elem(&inflight, &tid);
	if (targ_failed && ret >= 0)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		return 0;
	}
	e->ts = bpf_ktime_get_boot_ns();
	e->pid = id >> 32;
	e->tid = tid;
	e->ret = ret;
	e->syscall = copy.syscall;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), copy.path) < 0)
		e->path[0] = 0;
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_newstat")
int stat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], STAT_NEWSTAT);
}

SEC("tracepoint/syscalls/sys_enter_newlstat")
int lstat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], STAT_NEWLSTAT);
}

SEC("tracepoint/syscalls/sys_enter_newfstatat")
int fstatat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], STAT_NEWFSTATAT);
}

SEC("tracepoint/syscalls/sys_enter_statx")
int statx_enter(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], STAT_STATX);
}

SEC("tracepoint/syscalls/sys_enter_statfs")
int statfs_enter(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], STAT_STATFS);
}

SEC("tracepoint/syscalls/sys_exit_newstat")
int stat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_newlstat")
int lstat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_newfstatat")
int fstatat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_statx")
int statx_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_statfs")
int statfs_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
