/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __BINDSNOOP_H
#define __BINDSNOOP_H

#define TASK_COMM_LEN 16

/* Socket options as bits of bind_event.opts (libbpf-tools prints them as FTNRr). */
#define OPT_FREEBIND 1
#define OPT_TRANSPARENT 2
#define OPT_BIND_ADDRESS_NO_PORT 4
#define OPT_REUSEADDR 8
#define OPT_REUSEPORT 16

/* One bind(2), as the ring buffer carries it. */
struct event {
	unsigned long long ts_us;    /* boot-time clock, us */
	/// @column {"header": "PID", "width": 7}
	int pid;
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "RET", "width": 4, "decoder": "errno"}
	int ret;                     /* 0, or -errno */
	/// @column {"header": "PROTO", "width": 5, "left": true, "decoder": {"name": "static_map", "map": {"6": "TCP", "17": "UDP", "132": "SCTP", "0": "?"}}}
	unsigned short proto;        /* the socket's IPPROTO_ (0: unknown, bind failed on the fd) */
	/// @column {"header": "OPTS", "width": 5}
	unsigned char opts;          /* OPT_ bits: 1 FREEBIND, 2 TRANSPARENT, 4 BIND_ADDRESS_NO_PORT, 8 REUSEADDR, 16 REUSEPORT */
	unsigned char pad;
	/// @column {"header": "IF", "width": 2}
	unsigned int bound_dev_if;   /* SO_BINDTODEVICE's ifindex (0: any) */
	/// @column {"header": "PORT", "width": 5, "decoder": "port"}
	unsigned short port;         /* requested, host order */
	unsigned short af;           /* the sockaddr's family: AF_INET or AF_INET6 */
	/// @column {"header": "ADDR", "width": 16, "left": true, "decoder": {"name": "inet", "family": "af"}}
	unsigned char addr[16];      /* requested; IPv4 in the first 4 bytes, or IPv6 */
	int fd;
	unsigned long long cgroup_id; /* the binding task's cgroup v2 id: --containers names its container */
};

#endif /* __BINDSNOOP_H */
