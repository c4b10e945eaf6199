/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __SYNCSNOOP_H
#define __SYNCSNOOP_H

#define TASK_COMM_LEN 16

/* Which sync call it was. */
enum sync_syscall {
	SYNC_SYNC = 0,
	SYNC_FSYNC = 1,
	SYNC_FDATASYNC = 2,
	SYNC_MSYNC = 3,
	SYNC_SYNCFS = 4,
	SYNC_FILE_RANGE = 5,
};

/* One sync call at its entry, as the ring buffer carries it. */
struct event {
	unsigned long long ts; /* boot-time clock, ns */
	/// @column {"header": "PID", "width": 7}
	int pid;
	int tid;
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "CALL", "width": 16, "left": true, "decoder": {"name": "static_map", "map": {"0": "sync", "1": "fsync", "2": "fdatasync", "3": "msync", "4": "syncfs", "5": "sync_file_range"}}}
	unsigned int call; /* enum sync_syscall */
	/// @column {"header": "FD", "width": 4}
	long long fd; /* the file descriptor; msync: the address; sync: -1 */
	unsigned long long cgroup_id; /* the caller's cgroup v2 id: --containers names its container */
};

#endif /* __SYNCSNOOP_H */
