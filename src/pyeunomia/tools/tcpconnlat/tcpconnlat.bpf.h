/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TCPCONNLAT_H
#define __TCPCONNLAT_H

#define TASK_COMM_LEN 16

/* One connect that completed, as the ring buffer carries it. */
struct event {
	unsigned long long ts_us;    /* boot-time clock at ESTABLISHED, us */
	/// @column {"header": "PID", "width": 7}
	int pid;                     /* the task that called connect() */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "IP", "width": 2, "decoder": {"name": "static_map", "map": {"2": "4", "10": "6"}}}
	unsigned short af;           /* AF_INET or AF_INET6 */
	/// @column {"header": "SADDR", "width": 16, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char saddr[16];     /* IPv4 in the first 4 bytes, or IPv6 */
	/// @column {"header": "LPORT", "width": 6, "extended": true, "decoder": "port"}
	unsigned short lport;        /* host order */
	/// @column {"header": "DADDR", "width": 16, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char daddr[16];
	/// @column {"header": "DPORT", "width": 5, "decoder": "port"}
	unsigned short dport;        /* host order */
	/// @column {"header": "LAT(ms)", "width": 8, "decoder": {"name": "duration", "unit": "us", "show": "ms"}}
	unsigned long long delta_us; /* SYN_SENT -> ESTABLISHED */
	unsigned long long cgroup_id; /* the connecting task's cgroup v2 id: --containers names its container */
};

#endif /* __TCPCONNLAT_H */
