/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __THREADSNOOP_H
#define __THREADSNOOP_H

#define TASK_COMM_LEN 16

/* One new thread. */
struct event {
	unsigned long long ts;   /* CLOCK_MONOTONIC, ns (the runner's -T prints wall time) */
	/// @column {"header": "PID", "width": 7, "left": true}
	int pid;                 /* the process the thread joins */
	/// @column {"header": "TID", "width": 7, "left": true}
	int tid;                 /* the new thread's id */
	/// @column {"header": "PTID", "width": 7, "left": true, "extended": true}
	int creator_tid;         /* the thread that created it */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	unsigned long long clone_flags;
	unsigned long long cgroup_id; /* the process's cgroup v2 id: --containers names its container */
};

#endif /* __THREADSNOOP_H */
