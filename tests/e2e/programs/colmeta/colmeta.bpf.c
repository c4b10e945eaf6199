// SPDX-License-Identifier: GPL-2.0
/// kill(2) and connect(2) calls and process exits of one process and its
/// children, as columns with decoders (tests/e2e/test_tool_meta_columns.py).
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "colmeta.bpf.h"

#define AF_INET 2
#define AF_INET6 10

/// Report only this process and its children (0: every process)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile __u32 targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* a call's arguments from its entry to its exit, by thread */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct event);
} started SEC(".maps");

static __always_inline bool wanted(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	return !targ_pid || tgid == targ_pid || BPF_CORE_READ(task, real_parent, tgid) == targ_pid;
}

static __always_inline void fill(struct event *e, __u32 kind)
{
	e->kind = kind;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
}

SEC("tp/syscalls/sys_enter_kill")
int kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event e = {};

	if (!wanted())
		return 0;
	fill(&e, KIND_KILL);
	e.sig = (__s32)ctx->args[1];
	e.lat_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&started, &tid, &e, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_enter_connect")
int connect_entry(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	const void *uaddr = (const void *)ctx->args[1];
	struct event e = {};
	__u16 family = 0;

	if (!wanted())
		return 0;
	bpf_probe_read_user(&family, sizeof(family), uaddr);
	if (family == AF_INET) {
		struct sockaddr_in sin = {};

		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		__builtin_memcpy(e.addr, &sin.sin_addr.s_addr, 4);
		e.port = sin.sin_port;
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sin6 = {};

		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		__builtin_memcpy(e.addr, &sin6.sin6_addr, 16);
		e.port = sin6.sin6_port;
	} else {
		return 0;
	}
	fill(&e, KIND_CONNECT);
	e.af = family;
	e.lat_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&started, &tid, &e, BPF_ANY);
	return 0;
}

static __always_inline int finish(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *s = bpf_map_lookup_elem(&started, &tid);
	struct event *e;

	if (!s)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		__builtin_memcpy(e, s, sizeof(*e));
		e->err = ret < 0 ? (__s32)-ret : 0;
		e->lat_ns = bpf_ktime_get_ns() - s->lat_ns;
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&started, &tid);
	return 0;
}

SEC("tp/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return finish(ctx->ret);
}

SEC("tp/syscalls/sys_exit_connect")
int connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return finish(ctx->ret);
}

SEC("tp/sched/sched_process_exit")
int process_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct event *e;

	if ((__u32)id != id >> 32 || !wanted())
		return 0;  /* threads other than the leader: not a process exit */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	fill(e, KIND_EXIT);
	e->status = BPF_CORE_READ(task, exit_code);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
