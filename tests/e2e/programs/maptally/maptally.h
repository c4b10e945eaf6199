/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __MAPTALLY_H
#define __MAPTALLY_H

#define TASK_COMM_LEN 16
#define MAX_SLOTS 26
#define MAX_FDS 16

/* syscount's data_t: one per process */
struct data_t {
	__u64 count;
	__u64 bytes;
	char comm[TASK_COMM_LEN];
};

/* runqlat -P's key and hist: one histogram per process */
struct hist_key {
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

struct hist {
	__u32 slots[MAX_SLOTS];
};

#endif /* __MAPTALLY_H */
