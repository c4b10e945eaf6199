/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __OOMKILL_H
#define __OOMKILL_H

#define TASK_COMM_LEN 16

/* One OOM kill, as the ring buffer carries it. */
struct event {
	__u64 ts; /* boot-time clock, ns */
	/// @column {"header": "TPID", "width": 7}
	__u32 tpid; /* the process whose allocation triggered the kill */
	/// @column {"header": "TCOMM", "width": 16, "left": true}
	char tcomm[TASK_COMM_LEN];
	/// @column {"header": "KPID", "width": 7}
	__u32 kpid; /* the victim */
	/// @column {"header": "KCOMM", "width": 16, "left": true}
	char kcomm[TASK_COMM_LEN]; /* empty on kernels before 6.8 when the victim is another process */
	/// @column {"header": "TOTAL_VM(KB)", "width": 12}
	__u64 total_vm_kb; /* the victim's virtual memory, KiB (6.8+; 0 before) */
	/// @column {"header": "ANON_RSS(KB)", "width": 12}
	__u64 anon_rss_kb; /* its resident anonymous memory, KiB (6.8+; 0 before) */
	/// @column {"header": "UID", "width": 6, "extended": true}
	__u32 uid; /* the victim's uid (6.8+; -1 before) */
	__u32 has_details; /* 1 when the kernel's record carried comm, sizes and uid (6.8+) */
	__u64 cgroup_id; /* the triggering process's cgroup v2 id: --containers names its container */
};

#endif /* __OOMKILL_H */
