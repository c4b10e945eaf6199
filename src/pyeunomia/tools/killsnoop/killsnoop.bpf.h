/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __KILLSNOOP_H
#define __KILLSNOOP_H

#define TASK_COMM_LEN 16

/* Which system call sent the signal. */
enum kill_syscall {
	SYS_KILL = 0,
	SYS_TKILL = 1,
	SYS_TGKILL = 2,
};

/* One kill(2), tkill(2) or tgkill(2), as the ring buffer carries it. */
struct event {
	/// @column {"header": "PID", "width": 7, "left": true}
	int pid;                 /* the sender's process id */
	/// @column {"header": "TID", "width": 7, "left": true, "extended": true}
	int tid;                 /* the sender's thread id */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "SIG", "width": 9, "left": true, "decoder": "signal", "option": {"!sig_names": {"decoder": null}}}
	int sig;
	/// @column {"header": "TPID", "width": 7, "left": true}
	int tpid;                /* kill: the pid (or -pgid, 0, -1); tkill: the thread; tgkill: the process */
	/// @column {"header": "TTID", "width": 7, "left": true, "extended": true}
	int ttid;                /* tgkill's thread, else 0 */
	/// @column {"header": "RESULT", "width": 6, "decoder": "errno"}
	int ret;                 /* 0, or -errno */
	/// @column {"header": "SYSCALL", "extended": true, "decoder": {"name": "static_map", "map": {"0": "kill", "1": "tkill", "2": "tgkill"}}}
	unsigned int syscall;    /* enum kill_syscall */
	unsigned long long cgroup_id; /* the sender's cgroup v2 id: --containers names its container */
};

/* A call's arguments from its enter to its exit. */
struct kill_args {
	int tpid;
	int ttid;
	int sig;
	unsigned int syscall;    /* enum kill_syscall */
	unsigned int live;       /* 1 from a call's entry to its exit: its thread's slot is reused */
};

#endif /* __KILLSNOOP_H */
