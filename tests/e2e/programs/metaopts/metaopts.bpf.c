// SPDX-License-Identifier: GPL-2.0
/// Trace kill(2) calls filtered in the kernel by converted options. A test
/// program for the options' convert, metavar and flags (tests/e2e/test_tool_meta_options.py).
/// @positional ["targ_pid"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "metaopts.h"

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile __u32 targ_pid = 0;

/// Trace only processes in this cgroup
/// @cmdarg {"short": "c", "long": "cgroup", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

/// Trace only this signal
/// @cmdarg {"short": "s", "long": "signal", "convert": "signal", "metavar": "SIG"}
const volatile __s32 targ_sig = -1;

/// Show only kill calls that failed
/// @cmdarg {"short": "x", "long": "failed"}
const volatile bool targ_failed = false;

/// A duration, echoed
/// @cmdarg {"long": "min", "convert": {"name": "duration", "unit": "ns"}}
const volatile __u64 targ_min_ns = 0;

/// A size, echoed
/// @cmdarg {"long": "size", "convert": "bytes", "default": "1K"}
const volatile __u64 targ_size = 0;

/// A user, echoed
/// @cmdarg {"long": "user", "convert": "uid"}
const volatile __u32 targ_uid = 7;

/// A syscall, echoed
/// @cmdarg {"long": "syscall", "convert": "syscall"}
const volatile __u32 targ_nr = 0;

/// An errno, echoed
/// @cmdarg {"long": "errno", "convert": "errno"}
const volatile __u32 targ_err = 0;

/// An interface, echoed
/// @cmdarg {"long": "iface", "convert": "ifindex"}
const volatile __u32 targ_ifindex = 0;

/// Flags, echoed
/// @cmdarg {"long": "mode", "convert": {"name": "flags", "names": {"READ": 1, "WRITE": 2, "EXEC": 4}}}
const volatile __u32 targ_flags = 0;

struct seen seen;

struct args {
	__u32 tpid;
	__s32 sig;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct args);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id, pid = id >> 32;
	struct args a = {.tpid = ctx->args[0], .sig = ctx->args[1]};

	if (targ_pid && pid != targ_pid)
		return 0;
	if (targ_cgroup && bpf_get_current_cgroup_id() != targ_cgroup)
		return 0;
	if (targ_sig >= 0 && a.sig != targ_sig)
		return 0;
	bpf_map_update_elem(&start, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	struct args *a = bpf_map_lookup_elem(&start, &tid);
	struct event *e;

	if (!a)
		return 0;
	if (targ_failed && ctx->ret >= 0)
		goto out;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto out;
	e->pid = id >> 32;
	e->tpid = a->tpid;
	e->sig = a->sig;
	e->ret = ctx->ret;
	e->cgroup = bpf_get_current_cgroup_id();
	bpf_ringbuf_submit(e, 0);
	seen.min_ns = targ_min_ns;
	seen.size = targ_size;
	seen.uid = targ_uid;
	seen.nr = targ_nr;
	seen.err = targ_err;
	seen.ifindex = targ_ifindex;
	seen.flags = targ_flags;
out:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
