// SPDX-License-Identifier: GPL-2.0
/// Trace TCP connects and show each one's latency, from SYN sent to ESTABLISHED.
///
/// One hook: the sock:inet_sock_set_state tracepoint (4.16+). CLOSE ->
/// SYN_SENT happens inside connect(), in the connecting task, so its pid and
/// comm are kept there with the time, keyed by the socket; SYN_SENT ->
/// ESTABLISHED (in softirq, when the SYN-ACK arrives) ends the measure and
/// sends the event; SYN_SENT -> CLOSE (refused, timed out) drops it.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tcpconnlat.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/// Trace this PID only (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Show only connects slower than this (libbpf-tools' min_us: 1ms, 100us; a bare number is us)
/// @cmdarg {"short": "m", "long": "min", "metavar": "DURATION", "convert": {"name": "duration", "unit": "us"}}
const volatile __u64 targ_min_us = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Events the ring had no room for, per CPU: counted, never dropped silently. */
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
		*n += 1;
}

/* A connect in flight: when its SYN left, and who sent it. */
struct pending {
	__u64 ts_ns;
	__u64 cgroup_id;
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct pending);
} start SEC(".maps");

/* The addresses, from the socket: the tracepoint record's arrays sit at
 * offsets CO-RE relocates, and the verifier refuses a ctx pointer moved by a
 * register. IPv4 goes in the first 4 bytes, the rest zero. */
static __always_inline void read_addrs(struct sock *sk, __u16 family, unsigned char *saddr, unsigned char *daddr)
{
	if (family == AF_INET) {
		__builtin_memset(saddr, 0, 16);
		__builtin_memset(daddr, 0, 16);
		BPF_CORE_READ_INTO((__u32 *)saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)daddr, sk, __sk_common.skc_v6_daddr);
	}
}

SEC("tracepoint/sock/inet_sock_set_state")
int handle_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr, now, delta_us;
	int oldstate = ctx->oldstate, newstate = ctx->newstate;
	struct pending *p;
	struct event *e;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		struct pending fresh = {.ts_ns = bpf_ktime_get_ns()};

		fresh.pid = bpf_get_current_pid_tgid() >> 32;
		if (targ_pid && fresh.pid != targ_pid)
			return 0;
		/* connect() runs in the connecting task: its cgroup, kept for the
		 * ESTABLISHED change (softirq, any task); filtered out, never kept */
		fresh.cgroup_id = bpf_get_current_cgroup_id();
		if (!container_allowed(fresh.cgroup_id))
			return 0;
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
		bpf_map_update_elem(&start, &sk, &fresh, BPF_ANY);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT)
		return 0;
	p = bpf_map_lookup_elem(&start, &sk);
	if (!p)
		return 0;
	now = bpf_ktime_get_ns();
	delta_us = (now - p->ts_ns) / 1000;
	if (newstate != TCP_ESTABLISHED || delta_us < targ_min_us)
		goto out;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		goto out;
	}
	e->ts_us = now / 1000;
	e->delta_us = delta_us;
	e->pid = p->pid;
	e->cgroup_id = p->cgroup_id;
	__builtin_memcpy(e->comm, p->comm, sizeof(e->comm));
	e->af = ctx->family;
	e->lport = ctx->sport;
	e->dport = ctx->dport;
	read_addrs((struct sock *)sk, e->af, e->saddr, e->daddr);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
out:
	bpf_map_delete_elem(&start, &sk);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
