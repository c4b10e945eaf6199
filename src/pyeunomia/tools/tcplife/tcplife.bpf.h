/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TCPLIFE_H
#define __TCPLIFE_H

#define TASK_COMM_LEN 16

/* One TCP session that ended, as the ring buffer carries it. */
struct event {
	/// @column {"header": "PID", "width": 7}
	int pid;                     /* who opened it (connect), else who closed it first (0: neither seen) */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "LADDR", "width": 15, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char saddr[16];     /* IPv4 in the first 4 bytes, or IPv6 */
	/// @column {"header": "LPORT", "width": 5, "decoder": "port"}
	unsigned short sport;        /* host order */
	/// @column {"header": "RADDR", "width": 15, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char daddr[16];
	/// @column {"header": "RPORT", "width": 5, "decoder": "port"}
	unsigned short dport;        /* host order */
	unsigned short af;           /* AF_INET or AF_INET6 */
	/// @column {"header": "TX", "width": 9, "decoder": "bytes"}
	unsigned long long tx_b;     /* bytes the peer acknowledged (tcp_sock.bytes_acked) */
	/// @column {"header": "RX", "width": 9, "decoder": "bytes"}
	unsigned long long rx_b;     /* bytes received (tcp_sock.bytes_received) */
	/// @column {"header": "MS", "width": 8, "decoder": {"name": "duration", "unit": "us", "show": "ms"}}
	unsigned long long span_us;  /* from the first state change seen (SYN_SENT or SYN_RECV) to CLOSE */
	unsigned long long cgroup_id; /* the socket's cgroup v2 id: --containers names its container */
};

#endif /* __TCPLIFE_H */
