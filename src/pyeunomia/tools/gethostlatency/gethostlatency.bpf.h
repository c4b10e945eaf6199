/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __GETHOSTLATENCY_H
#define __GETHOSTLATENCY_H

#define TASK_COMM_LEN 16
#define HOST_LEN 80

/* Which resolver call it was. */
enum resolver_call {
	CALL_GETADDRINFO = 0,
	CALL_GETHOSTBYNAME = 1,
	CALL_GETHOSTBYNAME2 = 2,
};

/* One name lookup, as the ring buffer carries it. */
struct event {
	unsigned long long ts; /* boot-time clock at return, ns */
	/// @column {"header": "PID", "width": 7}
	int pid;
	int tid;
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "LATms", "width": 10, "decoder": {"name": "duration", "unit": "ns", "show": "ms"}}
	unsigned long long time; /* in the call, ns */
	/// @column {"header": "HOST", "left": true}
	char host[HOST_LEN];
	/// @column {"header": "CALL", "width": 14, "extended": true, "decoder": {"name": "static_map", "map": {"0": "getaddrinfo", "1": "gethostbyname", "2": "gethostbyname2"}}}
	unsigned int call; /* enum resolver_call */
	/// @column {"header": "RET", "width": 4, "extended": true}
	long long ret; /* getaddrinfo: 0 or EAI_*; gethostbyname[2]: the hostent pointer */
	unsigned long long cgroup_id; /* the caller's cgroup v2 id: --containers names its container */
};

#endif /* __GETHOSTLATENCY_H */
