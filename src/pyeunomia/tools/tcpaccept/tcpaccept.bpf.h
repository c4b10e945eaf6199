/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TCPACCEPT_H
#define __TCPACCEPT_H

#define TASK_COMM_LEN 16

/* One accepted TCP connection, as the ring buffer carries it. */
struct event {
	unsigned long long ts_us;    /* boot-time clock, us */
	/// @column {"header": "PID", "width": 7}
	int pid;                     /* the task whose accept() returned it */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "IP", "width": 2, "decoder": {"name": "static_map", "map": {"2": "4", "10": "6"}}}
	unsigned short af;           /* AF_INET or AF_INET6 */
	/// @column {"header": "RADDR", "width": 16, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char daddr[16];     /* the peer; IPv4 in the first 4 bytes, or IPv6 */
	/// @column {"header": "RPORT", "width": 5, "decoder": "port"}
	unsigned short dport;        /* host order */
	/// @column {"header": "LADDR", "width": 16, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char saddr[16];
	/// @column {"header": "LPORT", "width": 5, "decoder": "port"}
	unsigned short sport;        /* host order */
	/// @column {"header": "FD", "width": 4, "extended": true}
	int fd;                      /* what accept returned */
	unsigned long long cgroup_id; /* the acceptor's cgroup v2 id: --containers names its container */
};

#endif /* __TCPACCEPT_H */
