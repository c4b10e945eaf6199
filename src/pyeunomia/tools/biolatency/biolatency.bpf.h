/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __BIOLATENCY_H
#define __BIOLATENCY_H

#define MAX_SLOTS 27
#define RWBS_LEN 8 /* the tracepoints' rwbs is 8 bytes before 6.x grew it to 10: what fits in all */

/* One histogram per (disk, flags): both zero unless -D or -F asked for them. */
struct hist_key {
	unsigned int dev;    /* the kernel's dev_t (MAJOR << 20 | MINOR) */
	char rwbs[RWBS_LEN]; /* blktrace's flags: R read, W write, S sync, F flush, M meta, ... */
};

struct hist {
	unsigned int slots[MAX_SLOTS];
};

#endif /* __BIOLATENCY_H */
