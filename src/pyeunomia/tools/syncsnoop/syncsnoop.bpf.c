// SPDX-License-Identifier: GPL-2.0
/// Trace sync calls: sync, syncfs, fsync, fdatasync, msync and sync_file_range, with their file or range.
///
/// Each syscall's own enter tracepoint (syscalls/sys_enter_*) gives its
/// arguments on every kernel we support; the call is reported as it starts,
/// as bcc's and bpftrace's syncsnoop do, so a sync that blocks for seconds
/// shows when it is asked for. (sync_file_range2 is arm's and powerpc's
/// spelling: not traced on x86_64, which has no such tracepoint.)
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "syncsnoop.bpf.h"

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

static __always_inline int report(enum sync_syscall syscall, int fd, __u64 addr, __u64 len, __u32 flags)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (targ_pid && targ_pid != (id >> 32))
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
	e->tid = (__u32)id;
	e->syscall = syscall;
	e->fd = fd;
	e->addr = addr;
	e->len = len;
	e->flags = flags;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sync")
int enter_sync(struct trace_event_raw_sys_enter *ctx)
{
	return report(SYS_SYNC, -1, 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_syncfs")
int enter_syncfs(struct trace_event_raw_sys_enter *ctx)
{
	return report(SYS_SYNCFS, ctx->args[0], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_fsync")
int enter_fsync(struct trace_event_raw_sys_enter *ctx)
{
	return report(SYS_FSYNC, ctx->args[0], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int enter_fdatasync(struct trace_event_raw_sys_enter *ctx)
{
	return report(SYS_FDATASYNC, ctx->args[0], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_msync")
int enter_msync(struct trace_event_raw_sys_enter *ctx)
{
	return report(SYS_MSYNC, -1, ctx->args[0], ctx->args[1], ctx->args[2]);
}

/* sync_file_range(fd, offset, nbytes, flags) */
SEC("tracepoint/syscalls/sys_enter_sync_file_range")
int enter_sync_file_range(struct trace_event_raw_sys_enter *ctx)
{
	return report(SYS_SYNC_FILE_RANGE, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

char LICENSE[] SEC("license") = "GPL";
