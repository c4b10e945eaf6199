/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __OFFCPUTIME_BPF_H
#define __OFFCPUTIME_BPF_H

#define TASK_COMM_LEN 16

/* One period a thread spent off the CPU, with the stacks it blocked in
 * (ids into the stack trace map). */
struct event {
	__u32 tgid;
	__u32 tid;
	char comm[TASK_COMM_LEN];
	__s64 kern_stack_id;
	__s64 user_stack_id;
	/// @column {"header": "OFF(us)", "width": 10}
	__u64 delta_us;
	/* the thread's state when it was switched out (1: interruptible sleep, 2: uninterruptible) */
	__u32 state;
	__u32 cpu;
	/* the thread's cgroup v2 id when it blocked: its container with --containers */
	__u64 cgroup_id;
};

#endif
