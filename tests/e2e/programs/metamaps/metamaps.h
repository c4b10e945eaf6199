/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __METAMAPS_H
#define __METAMAPS_H

#define MAX_SLOTS 26
#define MAX_FDS 16

struct hist_key {
	__u32 fd;
	char comm[16];
};

struct hist {
	__u32 slots[MAX_SLOTS];
};

struct fdcount {
	__u32 counts[MAX_FDS];
};

struct fd_stat {
	__u64 count;
	__u64 bytes;
};

#endif /* __METAMAPS_H */
