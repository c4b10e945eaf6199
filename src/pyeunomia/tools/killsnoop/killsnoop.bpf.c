// SPDX-License-Identifier: GPL-2.0
/// Trace signals sent by kill(2), tkill(2) and tgkill(2): sender, signal, target and result.
///
/// The three syscalls' enter and exit tracepoints exist with the same layout
/// on every kernel we support (no kprobes here): the enter keeps the
/// arguments in a small map by thread id, the exit sends them with the
/// result. Filters run at the enter, so an unwanted call costs no map entry.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "killsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

/// Process ID to trace: the sender (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Trace failed signals only
/// @cmdarg {"short": "x", "long": "failed"}
const volatile bool failed_only = false;
/* Read by the runner only: the SIG column's "option" (-j has the number and sig_text either way) */
/// Output signal name instead of signal number.
/// @cmdarg {"short": "n", "long": "name"}
const volatile bool sig_names = false;
/// Trace signals issued by kill(2) only (tkill and tgkill are not hooked)
/// @cmdarg {"short": "k", "long": "kill"}
const volatile bool kill_only = false;
/// Trace this signal only (a name or number; 0: all)
/// @cmdarg {"short": "s", "long": "signal", "metavar": "SIGNAL", "convert": "signal"}
const volatile int targ_sig = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Calls between enter and exit: a slot per thread, written in place by its
 * next call (live 0: none in flight), not inserted and deleted per call: that
 * was ~300 ns of a traced kill's ~1.9 us (perf: htab update, delete and the
 * free list). LRU, so slots of threads that are gone make room; a call's slot
 * was touched at its entry, so it is evicted (that call not reported) only if
 * thousands of other threads enter kill() while it is in flight. State, not
 * results: never printed. */
/// @internal
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct kill_args);
} calls SEC(".maps");

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

static __always_inline int enter(int tpid, int ttid, int sig, enum kill_syscall syscall)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;

	if (targ_pid && targ_pid != (id >> 32))
		return 0;
	if (targ_sig && targ_sig != sig)
		return 0;
	if (!container_allowed(bpf_get_current_cgroup_id()))
		return 0;
	struct kill_args *slot = bpf_map_lookup_elem(&calls, &tid);
	if (slot) {
		slot->tpid = tpid;
		slot->ttid = ttid;
		slot->sig = sig;
		slot->syscall = syscall;
		slot->live = 1;
		return 0;
	}
	struct kill_args a = {.tpid = tpid, .ttid = ttid, .sig = sig, .syscall = syscall, .live = 1};
	if (bpf_map_update_elem(&calls, &tid, &a, BPF_ANY))
		count_lost();
	return 0;
}

static __always_inline int leave(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct kill_args *a = bpf_map_lookup_elem(&calls, &tid);

	if (!a || !a->live)
		return 0; /* an exit whose entry was not seen */
	a->live = 0;
	if (failed_only && ret >= 0)
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	e->pid = id >> 32;
	e->tid = tid;
	e->sig = a->sig;
	e->tpid = a->tpid;
	e->ttid = a->ttid;
	e->ret = ret;
	e->syscall = a->syscall;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], 0, ctx->args[1], SYS_KILL);
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

/// @when !kill_only
SEC("tracepoint/syscalls/sys_enter_tkill")
int tkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], 0, ctx->args[1], SYS_TKILL);
}

/// @when !kill_only
SEC("tracepoint/syscalls/sys_exit_tkill")
int tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

/// @when !kill_only
SEC("tracepoint/syscalls/sys_enter_tgkill")
int tgkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], ctx->args[1], ctx->args[2], SYS_TGKILL);
}

/// @when !kill_only
SEC("tracepoint/syscalls/sys_exit_tgkill")
int tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
