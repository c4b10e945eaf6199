/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __BIOSNOOP_H
#define __BIOSNOOP_H

#define TASK_COMM_LEN 16
#define RWBS_LEN 8 /* the tracepoints' rwbs is 8 bytes before 6.x grew it to 10: what fits in all */

/* One completed block I/O request. */
struct event {
	/// @column {"header": "TIME", "width": 15, "decoder": "ktime"}
	unsigned long long ts;     /* completion, boot-time clock, ns */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];  /* the task that queued or issued it */
	/// @column {"header": "PID", "width": 7}
	unsigned int pid;
	/// @column {"header": "DISK", "width": 9, "left": true, "decoder": "dev"}
	unsigned int dev;          /* the kernel's dev_t (MAJOR << 20 | MINOR) */
	/// @column {"header": "T", "width": 4, "left": true}
	char rwbs[RWBS_LEN];       /* blktrace's flags: R read, W write, S sync, F flush, ... */
	/// @column {"header": "SECTOR", "width": 10}
	unsigned long long sector;
	/// @column {"header": "BYTES", "width": 7}
	unsigned int len;
	/// @column {"header": "QUE(ms)", "width": 7, "extended": true, "decoder": {"name": "duration", "unit": "ns", "show": "ms"}}
	unsigned long long qdelta; /* insert to issue, ns (-Q only) */
	/// @column {"header": "LAT(ms)", "width": 7, "decoder": {"name": "duration", "unit": "ns", "show": "ms"}}
	unsigned long long delta;  /* issue to completion, ns */
	unsigned long long cgroup_id;
};

#endif /* __BIOSNOOP_H */
