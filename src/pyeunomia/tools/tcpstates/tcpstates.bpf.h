/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TCPSTATES_H
#define __TCPSTATES_H

#define TASK_COMM_LEN 16

/* One TCP state change, as the ring buffer carries it. */
struct event {
	/// @column {"header": "SKADDR", "width": 16, "left": true}
	unsigned long long skaddr;   /* the socket's kernel address: one connection's changes share it */
	unsigned long long ts_us;    /* boot-time clock, us */
	/// @column {"header": "PID", "width": 7}
	int pid;                     /* the task running when the state changed (often softirq's guest) */
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
	/// @column {"header": "OLDSTATE", "width": 11, "left": true, "decoder": "tcp_state"}
	int oldstate;
	/// @column {"header": "NEWSTATE", "width": 11, "left": true, "decoder": "tcp_state"}
	int newstate;
	/// @column {"header": "MS", "width": 7, "decoder": {"name": "duration", "unit": "us", "show": "ms"}}
	unsigned long long delta_us; /* time spent in oldstate (0: the first change seen) */
	unsigned long long cgroup_id; /* the socket's cgroup v2 id: --containers names its container */
};

#endif /* __TCPSTATES_H */
