/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __SYSCOUNT_H
#define __SYSCOUNT_H

#define TASK_COMM_LEN 16

/* What syscount keeps per syscall. */
struct data_t {
	/// @column {"header": "COUNT", "width": 10}
	__u64 count;
	/// @column {"header": "TIME (us)", "width": 12, "decoder": {"name": "duration", "unit": "ns", "show": "us"}}
	__u64 total_ns; /* summed latency: filled only with -L */
};

/* What syscount -P keeps per process. */
struct proc_data_t {
	/// @column {"header": "COUNT", "width": 10}
	__u64 count;
	/// @column {"header": "TIME (us)", "width": 12, "decoder": {"name": "duration", "unit": "ns", "show": "us"}}
	__u64 total_ns; /* summed latency: filled only with -L */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN]; /* the process's name when last counted */
};

#endif /* __SYSCOUNT_H */
