/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __SYSCOUNT_H
#define __SYSCOUNT_H

#define TASK_COMM_LEN 16

/* What syscount keeps per syscall (its columns: the @table comment of map syscalls). */
struct data_t {
	__u64 count;
	__u64 total_ns; /* summed latency: filled only with -L */
};

/* What syscount -P keeps per process. */
struct proc_data_t {
	__u64 count;
	__u64 total_ns; /* summed latency: filled only with -L */
	char comm[TASK_COMM_LEN]; /* the process's name when last counted */
};

#endif /* __SYSCOUNT_H */
