/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TCPRETRANS_H
#define __TCPRETRANS_H

/* One retransmitted segment, as the ring buffer carries it. */
struct event {
	__u64 ts; /* boot-time clock, ns */
	/// @column {"header": "PID", "width": 7}
	__u32 pid; /* whoever ran when it fired: usually the timer's softirq (0) */
	/// @column {"header": "IP", "width": 2, "decoder": {"name": "static_map", "map": {"2": "4", "10": "6"}}}
	__u16 af; /* AF_INET or AF_INET6 */
	/// @column {"header": "LPORT", "width": 6}
	__u16 lport; /* host order */
	/// @column {"header": "LADDR", "width": 26, "decoder": {"name": "inet", "family": "af"}}
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	/// @column {"header": "RADDR", "width": 26, "decoder": {"name": "inet", "family": "af"}}
	__u8 daddr[16];
	/// @column {"header": "RPORT", "width": 6}
	__u16 dport; /* host order */
	__u16 pad;
	/// @column {"header": "STATE", "width": 12, "left": true, "decoder": "tcp_state"}
	__u32 state;
	__u64 cgroup_id; /* the socket's cgroup v2 id: --containers names its container */
};

/* A flow, the key of the -c counts. */
struct flow_key {
	__u16 af;
	__u16 lport;
	__u16 dport;
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif /* __TCPRETRANS_H */
