/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __CPUDIST_BPF_H
#define __CPUDIST_BPF_H

#define TASK_COMM_LEN 16
#define MAX_SLOTS 36

/* One log2 histogram of on-CPU (or off-CPU) times; comm names a -P/-L key's task. */
struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[TASK_COMM_LEN];
};

#endif
