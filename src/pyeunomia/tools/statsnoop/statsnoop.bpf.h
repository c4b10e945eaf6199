/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __STATSNOOP_H
#define __STATSNOOP_H

#define TASK_COMM_LEN 16
#define PATH_LEN 256

/* Which call of the stat family it was. */
enum stat_syscall {
	STAT_NEWSTAT = 0,
	STAT_NEWLSTAT = 1,
	STAT_NEWFSTATAT = 2,
	STAT_STATX = 3,
	STAT_STATFS = 4,
};

/* One stat call, as the ring buffer carries it. */
struct event {
	unsigned long long ts; /* boot-time clock at exit, ns */
	/// @column {"header": "PID", "width": 7}
	int pid;
	int tid;
	/// @column {"header": "COMM", "width": 20, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "RET", "width": 4, "decoder": "result"}
	int ret; /* 0, or -errno */
	/// @column {"header": "SYSCALL", "width": 10, "extended": true, "decoder": {"name": "static_map", "map": {"0": "stat", "1": "lstat", "2": "fstatat", "3": "statx", "4": "statfs"}}}
	unsigned int syscall; /* enum stat_syscall */
	unsigned long long cgroup_id; /* the caller's cgroup v2 id: --containers names its container */
	/// @column {"header": "PATH", "left": true}
	char path[PATH_LEN];
};

#endif /* __STATSNOOP_H */
