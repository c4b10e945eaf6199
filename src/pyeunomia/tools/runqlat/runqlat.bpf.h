/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __RUNQLAT_BPF_H
#define __RUNQLAT_BPF_H

#define TASK_COMM_LEN 16
#define MAX_SLOTS 26

/* One log2 histogram of run-queue latency; comm names the task of a -P/-L key. */
struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[TASK_COMM_LEN];
};

#endif
