// SPDX-License-Identifier: GPL-2.0
/// Trace sync calls: sync, fsync, fdatasync, msync, syncfs and sync_file_range.
///
/// One syscalls tracepoint per call, at entry only: what a sync costs is the
/// stall that follows, and who asked is known at entry, so no exit program and
/// no per-thread map are needed. These tracepoints have the same layout on
/// every kernel from 5.10 on.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "syncsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Events the ring had no room for: counted, never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline int emit(unsigned int call, long long fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct event *e;

	if (targ_pid && targ_pid != (pid_t)(id >> 32))
		return 0;
	__u64 cgid = bpf_get_current_cgroup_id();

	if (!container_allowed(cgid))
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
	e->tid = (__u32)id;
	e->call = call;
	e->fd = fd;
	e->cgroup_id = cgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sync")
int sync_enter(struct trace_event_raw_sys_enter *ctx)
{
	return emit(SYNC_SYNC, -1);
}

SEC("tracepoint/syscalls/sys_enter_fsync")
int fsync_enter(struct trace_event_raw_sys_enter *ctx)
{
	return emit(SYNC_FSYNC, (int)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int fdatasync_enter(struct trace_event_raw_sys_enter *ctx)
{
	return emit(SYNC_FDATASYNC, (int)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_msync")
int msync_enter(struct trace_event_raw_sys_enter *ctx)
{
	return emit(SYNC_MSYNC, (long long)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_syncfs")
int syncfs_enter(struct trace_event_raw_sys_enter *ctx)
{
	return emit(SYNC_SYNCFS, (int)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_sync_file_range")
int sync_file_range_enter(struct trace_event_raw_sys_enter *ctx)
{
	return emit(SYNC_FILE_RANGE, (int)ctx->args[0]);
}

char LICENSE[] SEC("license") = "GPL";
