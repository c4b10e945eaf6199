/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __RUNQLEN_BPF_H
#define __RUNQLEN_BPF_H

#define MAX_SLOTS 32
#define MAX_CPU_NR 128

/* A linear histogram: slot i counts samples that found i tasks waiting
 * (the last slot: MAX_SLOTS - 1 or more). */
struct lhist {
	__u32 slots[MAX_SLOTS];
};

/* -O: of the samples on a CPU (or all), how many found a task waiting */
struct occupancy {
	__u64 samples;
	__u64 queued;
};

#endif
