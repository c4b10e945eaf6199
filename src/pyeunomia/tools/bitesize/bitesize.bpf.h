/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __BITESIZE_H
#define __BITESIZE_H

#define TASK_COMM_LEN 16
#define MAX_SLOTS 20

/* One histogram per process name. */
struct hist_key {
	char comm[TASK_COMM_LEN];
};

struct hist {
	unsigned int slots[MAX_SLOTS];
};

#endif /* __BITESIZE_H */
