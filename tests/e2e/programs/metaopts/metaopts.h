/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __METAOPTS_H
#define __METAOPTS_H

struct event {
	__u32 pid;
	__u32 tpid;
	__s32 sig;
	__s32 ret;
	__u64 cgroup;
};

/* the converted options as the kernel saw them, copied on the first event */
struct seen {
	__u64 min_ns;
	__u64 size;
	__u32 uid;
	__u32 nr;
	__u32 err;
	__u32 ifindex;
	__u32 flags;
};

#endif /* __METAOPTS_H */
