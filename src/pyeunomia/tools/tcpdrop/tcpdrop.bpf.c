// SPDX-License-Identifier: GPL-2.0
/// Trace TCP packets the kernel drops: addresses, ports, flags, state and the drop reason.
///
/// Hooks the skb:kfree_skb tracepoint (every kernel; consume_skb, the normal
/// end of a packet, has a tracepoint of its own) and keeps only TCP over IPv4
/// or IPv6, read from the packet's own headers, so drops before any socket
/// owns the packet (no listener: the RST case) are seen too. The record's
/// layout changed twice (reason in 5.17, rx_sk in 6.13): it is read through
/// CO-RE on the kernel's own trace_event_raw_kfree_skb, so one program loads
/// on 5.10, 6.1, 6.12 and later; where the kernel has no reason field the
/// event says -1 and the drop location still names the code that dropped.
/// A drop's container is its socket's cgroup (rx_sk, else skb->sk; a
/// request socket's listener's): drops run in softirq, in whichever task
/// it interrupted. A drop no full socket owned (no listener, TIME_WAIT)
/// has cgroup id 0, and no --container filter passes it.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tcpdrop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"
#include "../include/sock_cgroup.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define NO_REASON -1
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/// Trace IPv4 only
/// @cmdarg {"short": "4", "long": "ipv4"}
const volatile bool only_ipv4 = false;
/// Trace IPv6 only
/// @cmdarg {"short": "6", "long": "ipv6"}
const volatile bool only_ipv6 = false;
/// Trace only drops by this process id (0: all; most drops run in softirq)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Events the ring had no room for, reported by the reader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* The record as 6.13+ lays it out; CO-RE finds each field where this kernel
 * put it, and bpf_core_field_exists tells which ones it has. */
struct trace_event_raw_kfree_skb___x {
	void *skbaddr;
	void *location;
	void *rx_sk;
	unsigned short protocol;
	enum skb_drop_reason reason;
} __attribute__((preserve_access_index));

/* The socket a dropped packet belonged to: the receiver (6.13+ says it),
 * else the skb's owner (a sending socket); NULL for neither. */
static __always_inline const struct sock *drop_sock(struct trace_event_raw_kfree_skb___x *ctx, struct sk_buff *skb)
{
	const struct sock *sk = NULL;

	if (bpf_core_field_exists(ctx->rx_sk))
		sk = BPF_CORE_READ(ctx, rx_sk);
	if (!sk)
		sk = BPF_CORE_READ(skb, sk);
	return sk;
}

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
}

SEC("tracepoint/skb/kfree_skb")
int kfree_skb(struct trace_event_raw_kfree_skb___x *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)BPF_CORE_READ(ctx, skbaddr);
	const struct sock *sk = NULL;
	unsigned char *head, *th;
	__u16 nh_off, af, proto;
	__u8 version;
	struct event *e;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (targ_pid && pid != targ_pid)
		return 0;
	/* The record's protocol (skb->protocol, host order) first: a netlink or
	 * raw buffer has no IP header where network_header points, and its
	 * bytes could look like one. */
	proto = BPF_CORE_READ(ctx, protocol);
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return 0;
	/* a container filter first, before the headers are parsed; without
	 * one the socket is read only for the TCP drops reported */
	if (filter_cgroup_map && !container_allowed(sock_cgroup_id(drop_sock(ctx, skb))))
		return 0;
	head = BPF_CORE_READ(skb, head);
	nh_off = BPF_CORE_READ(skb, network_header);
	if (!head || nh_off == (__u16)~0U)
		return 0;
	if (bpf_probe_read_kernel(&version, 1, head + nh_off))
		return 0;
	version >>= 4;
	if (version != (proto == ETH_P_IP ? 4 : 6))
		return 0;
	if (version == 4) {
		struct iphdr ip;

		if (only_ipv6 || bpf_probe_read_kernel(&ip, sizeof(ip), head + nh_off))
			return 0;
		if (ip.protocol != IPPROTO_TCP)
			return 0;
		af = AF_INET;
		th = head + nh_off + ip.ihl * 4;
	} else if (version == 6) {
		struct ipv6hdr ip6;

		if (only_ipv4 || bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh_off))
			return 0;
		if (ip6.nexthdr != IPPROTO_TCP)
			return 0; /* extension headers: not followed */
		af = AF_INET6;
		th = head + nh_off + sizeof(ip6);
	} else {
		return 0;
	}

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	sk = drop_sock(ctx, skb);
	e->cgroup_id = sock_cgroup_id(sk);
	e->af = af;
	if (af == AF_INET) {
		bpf_probe_read_kernel(e->saddr, 4, head + nh_off + offsetof(struct iphdr, saddr));
		bpf_probe_read_kernel(e->daddr, 4, head + nh_off + offsetof(struct iphdr, daddr));
	} else {
		bpf_probe_read_kernel(e->saddr, 16, head + nh_off + offsetof(struct ipv6hdr, saddr));
		bpf_probe_read_kernel(e->daddr, 16, head + nh_off + offsetof(struct ipv6hdr, daddr));
	}
	{
		struct tcphdr tcp = {};

		bpf_probe_read_kernel(&tcp, sizeof(tcp), th);
		e->sport = bpf_ntohs(tcp.source);
		e->dport = bpf_ntohs(tcp.dest);
		e->tcpflags = ((__u8 *)&tcp)[13];
	}
	if (sk) {
		e->has_sk = 1;
		e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	}
	e->reason = bpf_core_field_exists(ctx->reason) ? BPF_CORE_READ(ctx, reason) : NO_REASON;
	e->location = (__u64)BPF_CORE_READ(ctx, location);
	e->ts = bpf_ktime_get_boot_ns();
	e->pid = pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
