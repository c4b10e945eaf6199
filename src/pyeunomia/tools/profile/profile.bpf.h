/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __PROFILE_BPF_H
#define __PROFILE_BPF_H

#define TASK_COMM_LEN 16

/* One sample of a CPU: who ran, and its stacks (ids into the stack trace map). */
struct event {
	__u32 tgid;
	__u32 tid;
	__u32 cpu;
	char comm[TASK_COMM_LEN];
	__s64 kern_stack_id;
	__s64 user_stack_id;
	/* the sampled task's cgroup v2 id: its container with --containers */
	__u64 cgroup_id;
};

#endif
