// SPDX-License-Identifier: GPL-2.0
/// Count system calls, by syscall or by process, with their latency (-L).
///
/// Hooks raw_syscalls:sys_exit, the one classic tracepoint every syscall
/// passes on its way out: it carries the syscall number and its return value,
/// so counting and the failure filters (-x, -e) need nothing else. Only -L
/// also uses raw_syscalls:sys_enter, to stamp the start time per thread.
/// Both tracepoints have had the same format since 3.x (5.10, 6.1, 6.12 and
/// later alike). Counts live in hash maps, printed at exit and every -i
/// seconds sorted by count, top 10, as libbpf-tools' syscount prints them.
/// @runner {"duration": "d", "interval": "i"}
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "syscount.bpf.h"
#include "../include/container_filter.bpf.h"

#define MAX_ENTRIES 8192

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t filter_pid = 0;
/// Trace only processes in this cgroup (a path under the cgroup v2 mount)
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "CGROUP", "convert": "cgroup"}
const volatile __u64 filter_cgroup = 0;
/// Count only failed syscalls
/// @cmdarg {"short": "x", "long": "failures"}
const volatile bool filter_failed = false;
/// Count only syscalls that failed with this error (ENOENT, EPERM or a number)
/// @cmdarg {"short": "e", "long": "errno", "metavar": "ERRNO", "convert": "errno"}
const volatile int filter_errno = 0;
/// Collect syscall latency
/// @cmdarg {"short": "L", "long": "latency"}
const volatile bool measure_latency = false;
/// Count by process and not by syscall
/// @cmdarg {"short": "P", "long": "process"}
const volatile bool count_by_process = false;
/// Display latency in milliseconds (default: microseconds)
/// @cmdarg {"short": "m", "long": "milliseconds"}
const volatile bool targ_ms = false;
/* Read by the runner only (the tables' "top"): the kernel counts every syscall */
/// Print only the top syscalls (default 10)
/// @cmdarg {"short": "T", "long": "top", "metavar": "TOP"}
const volatile __u32 targ_top = 10;

/* Enter time per thread, for -L: state between enter and exit, not a result. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

/// @table {"key": {"header": "SYSCALL", "decoder": "syscall"}, "columns": {"count": {"header": "COUNT"}, "total_ns": {"header": "TIME (us)", "decoder": {"name": "duration", "unit": "ns", "show": "us"}, "when": "measure_latency", "option": {"targ_ms": {"header": "TIME (ms)", "decoder": {"name": "duration", "unit": "ns", "show": "ms"}}}}}, "sort": "count", "top": "targ_top"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct data_t);
} syscalls SEC(".maps");

/// @table {"key": {"header": "PID"}, "columns": {"count": {"header": "COUNT"}, "total_ns": {"header": "TIME (us)", "decoder": {"name": "duration", "unit": "ns", "show": "us"}, "when": "measure_latency", "option": {"targ_ms": {"header": "TIME (ms)", "decoder": {"name": "duration", "unit": "ns", "show": "ms"}}}}, "comm": {"header": "COMM"}}, "sort": "count", "top": "targ_top"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct proc_data_t);
} processes SEC(".maps");

/* The classic tracepoint records (tracefs' format files): stable since 3.x. */
struct sys_enter_args {
	__u64 common;
	long id;
	unsigned long args[6];
};

struct sys_exit_args {
	__u64 common;
	long id;
	long ret;
};

static __always_inline bool traced(__u32 pid)
{
	if (filter_pid && pid != filter_pid)
		return false;
	if (filter_cgroup || filter_cgroup_map) {
		__u64 cgid = bpf_get_current_cgroup_id();

		if (filter_cgroup && cgid != filter_cgroup)
			return false;
		if (!container_allowed(cgid))
			return false;
	}
	return true;
}

/* Only -L needs the enter time: without it this program is not loaded, and
 * syscalls do not take the enter tracepoint's path at all. */
/// @when measure_latency
SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter(struct sys_enter_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	__u64 ts;

	if (!measure_latency || !traced(id >> 32))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit(struct sys_exit_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = id, key;
	struct data_t zero = {}, *val;
	__u64 *start_ts, lat = 0;
	long ret = ctx->ret;

	if (!traced(pid))
		return 0;
	if (measure_latency) {
		start_ts = bpf_map_lookup_elem(&start, &tid);
		if (!start_ts)
			return 0; /* entered before we attached */
		lat = bpf_ktime_get_ns() - *start_ts;
		bpf_map_delete_elem(&start, &tid);
	}
	if (ctx->id < 0)
		return 0; /* a syscall the kernel did not recognise, or a seccomp skip */
	if (filter_failed && ret >= 0)
		return 0;
	if (filter_errno && ret != -filter_errno)
		return 0;

	if (count_by_process) {
		struct proc_data_t pzero = {}, *pval;

		pval = bpf_map_lookup_elem(&processes, &pid);
		if (!pval) {
			bpf_get_current_comm(pzero.comm, sizeof(pzero.comm));
			bpf_map_update_elem(&processes, &pid, &pzero, BPF_NOEXIST);
			pval = bpf_map_lookup_elem(&processes, &pid);
			if (!pval)
				return 0;
		}
		__sync_fetch_and_add(&pval->count, 1);
		if (measure_latency)
			__sync_fetch_and_add(&pval->total_ns, lat);
		/* A pid's first syscalls are often its parent's fork child's, before
		 * exec or prctl(PR_SET_NAME) gave it its own name: the name after
		 * exec (59, execveat 322) or prctl (157) is the one to show (on x86_64;
		 * elsewhere the name is taken on every call). */
#if defined(__TARGET_ARCH_x86)
		if (ctx->id == 59 || ctx->id == 322 || ctx->id == 157)
#endif
			bpf_get_current_comm(pval->comm, sizeof(pval->comm));
		return 0;
	}
	key = ctx->id;
	val = bpf_map_lookup_elem(&syscalls, &key);
	if (!val) {
		bpf_map_update_elem(&syscalls, &key, &zero, BPF_NOEXIST);
		val = bpf_map_lookup_elem(&syscalls, &key);
		if (!val)
			return 0;
	}
	__sync_fetch_and_add(&val->count, 1);
	if (measure_latency)
		__sync_fetch_and_add(&val->total_ns, lat);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
