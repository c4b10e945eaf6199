/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __BASHREADLINE_H
#define __BASHREADLINE_H

#define TASK_COMM_LEN 16
#define LINE_LEN 128

/* One line a shell read, as the ring buffer carries it. */
struct event {
	unsigned long long ts; /* boot-time clock, ns */
	/// @column {"header": "PID", "width": 7}
	int pid;
	char comm[TASK_COMM_LEN];
	/// @column {"header": "COMMAND", "left": true}
	char line[LINE_LEN];
	unsigned long long cgroup_id; /* the shell's cgroup v2 id: --containers names its container */
};

#endif /* __BASHREADLINE_H */
