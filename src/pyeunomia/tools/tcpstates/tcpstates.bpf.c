// SPDX-License-Identifier: GPL-2.0
/// Trace TCP state changes, with the time each connection spent in its previous state.
///
/// One hook: the sock:inet_sock_set_state tracepoint (4.16+), which the kernel
/// fires for every TCP state change, with both addresses and ports already in
/// its record, so nothing needs reading from the socket. Fields are read through
/// CO-RE, so the record's layout may move between kernels. The time of each
/// socket's last change is kept in a hash map keyed by the socket's address and
/// dropped when the socket reaches CLOSE. A change's container is its
/// socket's cgroup (the creator's; an accepted socket's listener's): most
/// changes run in softirq, in whichever task it interrupted (on loopback,
/// the peer that sent the packet).
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tcpstates.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"
#include "../include/sock_cgroup.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MAX_PORTS 16

/// Trace IPv4 only
/// @cmdarg {"short": "4", "long": "ipv4"}
const volatile bool targ_ipv4 = false;
/// Trace IPv6 only
/// @cmdarg {"short": "6", "long": "ipv6"}
const volatile bool targ_ipv6 = false;
/// Comma-separated list of local ports to trace (up to 16)
/// @cmdarg {"short": "L", "long": "localport", "metavar": "LPORT"}
const volatile __u16 targ_lports[MAX_PORTS] = {};
/// Comma-separated list of remote ports to trace (up to 16)
/// @cmdarg {"short": "D", "long": "remoteport", "metavar": "DPORT"}
const volatile __u16 targ_dports[MAX_PORTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* When each socket last changed state, ns: the MS column's start. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u64);
} timestamps SEC(".maps");

/* Events the ring had no room for, per CPU: counted, never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* The port lists, parsed once from their text on the first event: the text
 * is what the command line gives, and parsing it here keeps tools free of
 * Python of their own. A race between CPUs parses it twice, to the same. */
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

/* The addresses, from the socket: the record's arrays sit at offsets CO-RE
 * relocates, and the verifier refuses a ctx pointer moved by a register. */
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
	__u64 sk = (__u64)ctx->skaddr, now = bpf_ktime_get_ns(), *then, delta = 0;
	__u16 family = ctx->family, sport = ctx->sport, dport = ctx->dport;
	int newstate = ctx->newstate;
	struct event *e;
	__u64 cgid;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if ((targ_ipv4 && family != AF_INET) || (targ_ipv6 && family != AF_INET6))
		return 0;
	if (!port_in(sport, targ_lports) || !port_in(dport, targ_dports))
		return 0;
	cgid = sock_cgroup_id((struct sock *)sk);
	if (!container_allowed(cgid))
		return 0;

	then = bpf_map_lookup_elem(&timestamps, &sk);
	if (then)
		delta = (now - *then) / 1000;
	if (newstate == TCP_CLOSE)
		bpf_map_delete_elem(&timestamps, &sk);
	else
		bpf_map_update_elem(&timestamps, &sk, &now, BPF_ANY);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		return 0;
	}
	e->skaddr = sk;
	e->cgroup_id = cgid;
	e->ts_us = now / 1000;
	e->delta_us = delta;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->oldstate = ctx->oldstate;
	e->newstate = newstate;
	e->af = family;
	e->sport = sport;
	e->dport = dport;
	read_addrs((struct sock *)sk, family, e->saddr, e->daddr);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
