/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __SYNCSNOOP_H
#define __SYNCSNOOP_H

#define TASK_COMM_LEN 16

/* Which system call asked for the sync. */
enum sync_syscall {
	SYS_SYNC = 0,
	SYS_SYNCFS = 1,
	SYS_FSYNC = 2,
	SYS_FDATASYNC = 3,
	SYS_MSYNC = 4,
	SYS_SYNC_FILE_RANGE = 5,
};

/* One sync call, seen at its entry (as bcc's and bpftrace's syncsnoop). */
struct event {
	unsigned long long ts;   /* CLOCK_MONOTONIC, ns (the runner's -T prints wall time) */
	/// @column {"header": "PID", "width": 7, "left": true}
	int pid;
	/// @column {"header": "TID", "width": 7, "left": true, "extended": true}
	int tid;
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "EVENT", "width": 16, "left": true, "decoder": {"name": "static_map", "map": {"0": "sync", "1": "syncfs", "2": "fsync", "3": "fdatasync", "4": "msync", "5": "sync_file_range"}}}
	unsigned int syscall;    /* enum sync_syscall */
	/// @column {"header": "FD", "width": 4, "extended": true}
	int fd;                  /* the file (syncfs, fsync, fdatasync, sync_file_range), else -1 */
	/// @column {"header": "ADDR", "width": 18, "extended": true}
	unsigned long long addr; /* msync's start address, sync_file_range's offset, else 0 */
	/// @column {"header": "LEN", "width": 10, "extended": true}
	unsigned long long len;  /* msync's or sync_file_range's length in bytes, else 0 */
	unsigned int flags;      /* msync's or sync_file_range's flags */
};

#endif /* __SYNCSNOOP_H */
