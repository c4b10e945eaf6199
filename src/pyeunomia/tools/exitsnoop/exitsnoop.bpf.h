/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __EXITSNOOP_H
#define __EXITSNOOP_H

#define TASK_COMM_LEN 16

/* One process (or, with -t, thread) exit. */
struct event {
	unsigned long long start_time; /* task's start, boot clock (CLOCK_MONOTONIC), ns */
	unsigned long long exit_time;  /* the same clock at its exit, ns */
	/// @column {"header": "PCOMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "PID", "width": 7, "left": true}
	int pid;
	/// @column {"header": "PPID", "width": 7, "left": true}
	int ppid;
	/// @column {"header": "TID", "width": 7, "left": true}
	int tid;
	/// @column {"header": "AGE(s)", "width": 7, "decoder": {"name": "duration", "unit": "ns", "show": "s"}}
	unsigned long long age;        /* exit_time - start_time, ns */
	/// @column {"header": "EXIT_CODE", "left": true, "decoder": "exit_status"}
	unsigned int exit_status;      /* the wait status: code << 8, or the signal (| 0x80 with a core) */
	int exit_code;                 /* the code given to exit(), 0 when killed */
	int sig;                       /* the signal that killed it, 0 when it exited */
	unsigned long long cgroup_id;  /* the exiting task's cgroup v2 id: --containers names its container */
};

#endif /* __EXITSNOOP_H */
