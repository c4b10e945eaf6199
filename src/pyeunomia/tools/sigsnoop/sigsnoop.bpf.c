// SPDX-License-Identifier: GPL-2.0
/// Trace signals: every signal generated on the machine, who sent it to whom and what became of it.
///
/// signal/signal_generate fires for every signal the kernel generates (kill,
/// tgkill, a fault, a timer, a pipe...) in the sender's context, with the
/// target, the signal and the result, in one tracepoint whose layout is the
/// same on every kernel we support. -k narrows it to kill(2), traced by its
/// syscall tracepoints as libbpf-tools does: then signal_generate returns
/// at once, and without -k the kill pair does.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sigsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

/// Process ID to trace: the sender (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t filtered_pid = 0;
/// Trace failed signals only
/// @cmdarg {"short": "x", "long": "failed"}
const volatile bool failed_only = false;
/* Read by the runner only: the SIG column's "option" (-j has the number and sig_text either way) */
/// Output signal name instead of signal number.
/// @cmdarg {"short": "n", "long": "name"}
const volatile bool sig_names = false;
/// Trace signals issued by the kill syscall only
/// @cmdarg {"short": "k", "long": "kill"}
const volatile bool kill_only = false;
/// Signal to trace (a name or number; 0: all)
/// @cmdarg {"short": "s", "long": "signal", "metavar": "SIGNAL", "convert": "signal"}
const volatile int target_signal = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* kill(2) calls between enter and exit, by thread id (-k only). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct event);
} values SEC(".maps");

/* Events the ring had no room for, counted per CPU: never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		(*n)++;
}

static __always_inline void send(struct event *src)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_lost();
		return;
	}
	__builtin_memcpy(e, src, sizeof(*e));
	bpf_ringbuf_submit(e, wakeup_flags(&events));
}

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	int sig = ctx->args[1];

	if (!kill_only)
		return 0;
	if (filtered_pid && filtered_pid != (id >> 32))
		return 0;
	if (target_signal && target_signal != sig)
		return 0;
	__u64 cgid = bpf_get_current_cgroup_id();

	if (!container_allowed(cgid))
		return 0;
	struct event e = {};
	e.pid = id >> 32;
	e.cgroup_id = cgid;
	e.tpid = ctx->args[0];
	e.sig = sig;
	e.result = -1;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	if (bpf_map_update_elem(&values, &tid, &e, BPF_ANY))
		count_lost(); /* 10240 kill()s in flight: this one is lost, and counted */
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!kill_only)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *e = bpf_map_lookup_elem(&values, &tid);
	if (!e)
		return 0;
	e->ret = ctx->ret;
	if (!failed_only || e->ret < 0)
		send(e);
	bpf_map_delete_elem(&values, &tid);
	return 0;
}

SEC("tracepoint/signal/signal_generate")
int sig_trace(struct trace_event_raw_signal_generate *ctx)
{
	if (kill_only)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	int sig = ctx->sig, ret = ctx->errno;

	if (filtered_pid && filtered_pid != (id >> 32))
		return 0;
	if (target_signal && target_signal != sig)
		return 0;
	if (failed_only && ret == 0)
		return 0;
	/* The sender's cgroup, as PID is the sender: a signal the kernel raises
	 * from an interrupt (a timer's) carries the interrupted task's, both. */
	__u64 cgid = bpf_get_current_cgroup_id();

	if (!container_allowed(cgid))
		return 0;
	struct event e = {};
	e.pid = id >> 32;
	e.cgroup_id = cgid;
	e.tpid = ctx->pid;
	e.sig = sig;
	e.ret = ret;
	e.result = ctx->result;
	e.code = ctx->code;
	e.group = ctx->group;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_probe_read_kernel(e.tcomm, sizeof(e.tcomm), ctx->comm);
	send(&e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
