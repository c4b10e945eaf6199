/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TCPCONNECT_H
#define __TCPCONNECT_H

#define TASK_COMM_LEN 16

/* One active TCP open (connect), as the ring buffer carries it. */
struct event {
	unsigned long long ts_us;    /* boot-time clock, us */
	/// @column {"header": "UID", "width": 6, "extended": true}
	unsigned int uid;
	/// @column {"header": "PID", "width": 7}
	int pid;                     /* the task that called connect() */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "IP", "width": 2, "decoder": {"name": "static_map", "map": {"2": "4", "10": "6"}}}
	unsigned short af;           /* AF_INET or AF_INET6 */
	/// @column {"header": "SADDR", "width": 16, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char saddr[16];     /* IPv4 in the first 4 bytes, or IPv6 */
	/// @column {"header": "DADDR", "width": 16, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char daddr[16];
	/// @column {"header": "DPORT", "width": 5, "decoder": "port"}
	unsigned short dport;        /* host order */
	unsigned short pad;
	unsigned long long cgroup_id; /* cgroup v2 id: --containers names its container */
};

/* Count mode's key: who was connected to what. */
struct conn_key {
	unsigned char saddr[16];
	unsigned char daddr[16];
	unsigned short af;
	unsigned short dport;
};

#endif /* __TCPCONNECT_H */
