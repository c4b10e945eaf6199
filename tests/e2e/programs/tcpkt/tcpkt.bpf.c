// SPDX-License-Identifier: GPL-2.0
/// Reports IPv4 UDP packets to one port from two tc programs, so a test can
/// put them on different hooks (ingress, egress) through package metadata.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tcpkt.h"

#define TC_ACT_UNSPEC -1 /* on to the next filter (tcx: TCX_NEXT), so both programs see a packet */
#define ETH_P_IP 0x0800
#define ETH_HLEN 14

/// UDP destination port to report
const volatile unsigned short port = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline int report(struct __sk_buff *skb, unsigned char prog)
{
	struct iphdr ip;
	struct udphdr udp;
	struct tc_event *e;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) || ip.protocol != IPPROTO_UDP)
		return TC_ACT_UNSPEC;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, &udp, sizeof(udp)) || bpf_ntohs(udp.dest) != port)
		return TC_ACT_UNSPEC;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return TC_ACT_UNSPEC;
	e->ifindex = skb->ifindex;
	e->ingress_ifindex = skb->ingress_ifindex;
	e->len = skb->len;
	e->dport = port;
	e->prog = prog;
	bpf_ringbuf_submit(e, 0);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_one(struct __sk_buff *skb)
{
	return report(skb, 1);
}

SEC("tc")
int tc_two(struct __sk_buff *skb)
{
	return report(skb, 2);
}

char LICENSE[] SEC("license") = "GPL";
