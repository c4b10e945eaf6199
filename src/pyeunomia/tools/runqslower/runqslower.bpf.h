/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __RUNQSLOWER_BPF_H
#define __RUNQSLOWER_BPF_H

#define TASK_COMM_LEN 16

/* A task that waited on a run queue longer than the threshold. */
struct event {
	/// @column {"header": "COMM", "width": 16, "left": true}
	char task[TASK_COMM_LEN];
	/// @column {"header": "TID", "width": 7}
	__u32 pid;
	/// @column {"header": "LAT(us)", "width": 14}
	__u64 delta_us;
	/// @column {"header": "PREV COMM", "width": 16, "left": true, "extended": true}
	char prev_task[TASK_COMM_LEN];
	/// @column {"header": "PREV TID", "width": 7, "extended": true}
	__u32 prev_pid;
	/* the waiting task's process id: in -j only */
	__u32 tgid;
	/* the waiting task's cgroup v2 id: its container with --containers */
	__u64 cgroup_id;
};

#endif
