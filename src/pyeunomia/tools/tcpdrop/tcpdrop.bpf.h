/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TCPDROP_H
#define __TCPDROP_H

#define TASK_COMM_LEN 16

/* One TCP packet the kernel dropped, as the ring buffer carries it. */
struct event {
	__u64 ts; /* boot-time clock, ns */
	/// @column {"header": "PID", "width": 7}
	__u32 pid; /* whoever ran when it was dropped (0: a softirq on an idle CPU) */
	/// @column {"header": "IP", "width": 2, "decoder": {"name": "static_map", "map": {"2": "4", "10": "6"}}}
	__u16 af; /* AF_INET or AF_INET6, from the IP header's version */
	/// @column {"header": "SPORT", "width": 6}
	__u16 sport; /* host order */
	/// @column {"header": "SADDR", "width": 26, "decoder": {"name": "inet", "family": "af"}}
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	/// @column {"header": "DADDR", "width": 26, "decoder": {"name": "inet", "family": "af"}}
	__u8 daddr[16];
	/// @column {"header": "DPORT", "width": 6}
	__u16 dport; /* host order */
	/// @column {"header": "FLAGS", "width": 5}
	__u8 tcpflags; /* the TCP header's flag byte: FIN 1, SYN 2, RST 4, PSH 8, ACK 16 */
	__u8 has_sk; /* 1 when the packet had a socket, whose state is in state */
	/// @column {"header": "STATE", "width": 12, "left": true, "decoder": "tcp_state"}
	__u32 state; /* 0 when no socket owned the packet */
	/// @column {"header": "REASON", "width": 6, "left": true, "decoder": {"name": "kernel_enum", "type": "skb_drop_reason", "prefix": "SKB_DROP_REASON_"}}
	__s32 reason; /* enum skb_drop_reason (5.17+; numbers differ by kernel), -1 on older kernels */
	/// @column {"header": "LOCATION", "width": 24, "left": true, "decoder": "ksym"}
	__u64 location; /* the kernel code that freed it */
	/// @column {"header": "COMM", "width": 16, "left": true, "extended": true}
	char comm[TASK_COMM_LEN];
	__u64 cgroup_id; /* the socket's cgroup v2 id (0: no full socket): --containers names its container */
};

#endif /* __TCPDROP_H */
