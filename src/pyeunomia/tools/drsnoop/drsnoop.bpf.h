/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __DRSNOOP_H
#define __DRSNOOP_H

#define TASK_COMM_LEN 16

/* One direct reclaim, as the ring buffer carries it. */
struct event {
	__u64 ts; /* boot-time clock at its end, ns */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "PID", "width": 7}
	__u32 pid;
	/// @column {"header": "TID", "width": 7, "extended": true}
	__u32 tid;
	/// @column {"header": "LAT(ms)", "width": 8, "decoder": {"name": "duration", "unit": "ns", "show": "ms"}}
	__u64 delta_ns;
	/// @column {"header": "PAGES", "width": 6}
	__u64 nr_reclaimed;
	/// @column {"header": "ORDER", "width": 5, "extended": true}
	__s32 order; /* of the allocation that reclaimed */
	/// @column {"header": "KIND", "width": 6, "left": true, "decoder": {"name": "static_map", "map": {"0": "direct", "1": "memcg"}}}
	__u32 memcg; /* 0: the allocator's direct reclaim, 1: a memory cgroup over its limit */
	__u64 cgroup_id; /* the reclaiming task's cgroup v2 id: --containers names its container */
};

/* What the begin tracepoint left for the end. */
struct start_t {
	__u64 ts;
	__s32 order;
	__u32 memcg;
};

#endif /* __DRSNOOP_H */
