/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __FILELIFE_H
#define __FILELIFE_H

#define TASK_COMM_LEN 16
#define PATH_LEN 256

/* One file deleted after its creation was seen, as the ring buffer carries it. */
struct event {
	unsigned long long ts; /* boot-time clock at the deletion, ns */
	/// @column {"header": "PID", "width": 7}
	int pid; /* who deleted it */
	int tid;
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "AGE(s)", "width": 8, "decoder": {"name": "duration", "unit": "ns", "show": "s"}}
	unsigned long long age; /* from its creation to its deletion, ns */
	/// @column {"header": "CPID", "width": 7, "extended": true}
	int creator_pid; /* who created it */
	/// @column {"header": "FILE", "left": true}
	char path[PATH_LEN]; /* absolute, as the kernel's dentries name it */
	unsigned long long cgroup_id; /* the deleter's cgroup v2 id: --containers names its container */
};

/* A created file waiting for its deletion. */
struct birth {
	unsigned long long ts;
	int pid;
};

#endif /* __FILELIFE_H */
