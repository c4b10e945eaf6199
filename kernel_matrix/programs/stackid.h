/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __STACKID_H
#define __STACKID_H

/* One sample: stack ids into the program's stack trace map, as
 * libbpf-tools' profile and offcputime keep them. */
struct stack_sample {
	__u32 tgid;
	__u32 cpu;
	char task[16];
	__s64 kern_stack_id;
	__s64 user_stack_id;
};

#endif
