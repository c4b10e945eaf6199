// SPDX-License-Identifier: GPL-2.0
/// Trace TCP sessions as they close: who, both ends, bytes sent and received, and how long it lived.
///
/// One hook: the sock:inet_sock_set_state tracepoint (4.16+). A session's
/// birth is its first change into SYN_SENT, SYN_RECV or ESTABLISHED; its owner
/// is the task that moved it to SYN_SENT (connect() runs in that task), else
/// the first to move it to FIN_WAIT1 or LAST_ACK (close() runs in the closer);
/// at CLOSE the byte counts are read from the tcp_sock through CO-RE and one
/// event is sent. Sessions born before the tool started are not reported.
/// A session's container is its socket's cgroup (the creator's; an accepted
/// socket's listener's): most changes run in softirq, in whichever task it
/// interrupted, so the current task's cgroup would name the wrong one.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tcplife.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"
#include "../include/sock_cgroup.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MAX_PORTS 16

/// Process ID to trace (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Trace IPv4 only
/// @cmdarg {"short": "4", "long": "ipv4"}
const volatile bool targ_ipv4 = false;
/// Trace IPv6 only
/// @cmdarg {"short": "6", "long": "ipv6"}
const volatile bool targ_ipv6 = false;
/// Comma-separated list of local ports to trace (up to 16)
/// @cmdarg {"short": "L", "long": "localport", "metavar": "LOCALPORT"}
const volatile __u16 targ_lports[MAX_PORTS] = {};
/// Comma-separated list of remote ports to trace (up to 16)
/// @cmdarg {"short": "D", "long": "remoteport", "metavar": "REMOTEPORT"}
const volatile __u16 targ_dports[MAX_PORTS] = {};

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

/* A session in flight: when it was born, and who owns it. */
struct session {
	__u64 born_ns;
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, struct session);
} sessions SEC(".maps");

/* Whether `port` is in a list the command line gave (-P 80,443 fills its
 * first elements, the rest stay zero); an empty list takes every port, and
 * the list ends at its first zero. */
static __always_inline bool port_in(__u16 port, const volatile __u16 *list)
{
	if (!list[0])
		return true;
	for (int i = 0; i < MAX_PORTS; i++) {
		if (!list[i])
			break;
		if (list[i] == port)
			return true;
	}
	return false;
}

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
	__u64 sk = (__u64)ctx->skaddr, now = bpf_ktime_get_ns();
	__u16 family = ctx->family, sport = ctx->sport, dport = ctx->dport;
	int newstate = ctx->newstate;
	struct session *s;
	struct tcp_sock *tp;
	struct event *e;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if ((targ_ipv4 && family != AF_INET) || (targ_ipv6 && family != AF_INET6))
		return 0;
	/* a session of an unchosen container never enters the map */
	if (filter_cgroup_map && !container_allowed(sock_cgroup_id((struct sock *)sk)))
		return 0;

	s = bpf_map_lookup_elem(&sessions, &sk);
	if (newstate < TCP_FIN_WAIT1) { /* ESTABLISHED, SYN_SENT, SYN_RECV */
		if (!s) {
			struct session fresh = {.born_ns = now};

			bpf_map_update_elem(&sessions, &sk, &fresh, BPF_NOEXIST);
			s = bpf_map_lookup_elem(&sessions, &sk);
			if (!s)
				return 0;
		}
		if (newstate == TCP_SYN_SENT) {
			s->pid = bpf_get_current_pid_tgid() >> 32;
			bpf_get_current_comm(s->comm, sizeof(s->comm));
		}
		return 0;
	}
	if (!s)
		return 0;
	if ((newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK) && !s->pid) {
		s->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(s->comm, sizeof(s->comm));
	}
	if (newstate != TCP_CLOSE)
		return 0;
	/* Reset before either end closed (SO_LINGER 0 on the peer): no task was
	 * recorded. The task current at CLOSE is the one libbpf-tools names too;
	 * on loopback it is the peer that sent the reset, in its own context. */
	if (!s->pid) {
		s->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(s->comm, sizeof(s->comm));
	}

	if ((targ_pid && s->pid != targ_pid) ||
	    !port_in(sport, targ_lports) || !port_in(dport, targ_dports)) {
		bpf_map_delete_elem(&sessions, &sk);
		return 0;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		bpf_map_delete_elem(&sessions, &sk);
		return 0;
	}
	e->pid = s->pid;
	e->cgroup_id = sock_cgroup_id((struct sock *)sk);
	__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
	e->span_us = (now - s->born_ns) / 1000;
	tp = (struct tcp_sock *)sk;
	e->rx_b = BPF_CORE_READ(tp, bytes_received);
	e->tx_b = BPF_CORE_READ(tp, bytes_acked);
	e->af = family;
	e->sport = sport;
	e->dport = dport;
	read_addrs((struct sock *)sk, family, e->saddr, e->daddr);
	bpf_map_delete_elem(&sessions, &sk);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
