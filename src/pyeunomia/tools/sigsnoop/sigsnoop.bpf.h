/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __SIGSNOOP_H
#define __SIGSNOOP_H

#define TASK_COMM_LEN 16

/* One signal generated (or, with -k, one kill(2)). */
struct event {
	/// @column {"header": "PID", "width": 7, "left": true}
	int pid;                 /* the sender: the task running when the signal was generated */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "SIG", "width": 9, "left": true, "decoder": "signal", "option": {"!sig_names": {"decoder": null}}}
	int sig;
	/// @column {"header": "TPID", "width": 7, "left": true}
	int tpid;                /* the target thread (kill(2)'s pid argument with -k) */
	/// @column {"header": "RESULT", "width": 6, "decoder": "errno"}
	int ret;                 /* the signal's si_errno, or kill(2)'s -errno with -k */
	/// @column {"header": "TCOMM", "width": 16, "left": true, "extended": true}
	char tcomm[TASK_COMM_LEN]; /* the target's name ("" with -k) */
	/// @column {"header": "DELIVERY", "extended": true, "decoder": {"name": "static_map", "map": {"0": "delivered", "1": "ignored", "2": "already_pending", "3": "overflow_fail", "4": "lose_info", "-1": "kill"}}}
	int result;              /* signal_generate's result (TRACE_SIGNAL_*), -1 with -k */
	int code;                /* si_code: SI_USER 0, SI_KERNEL 128, SI_TKILL -6... */
	int group;               /* 1: sent to the whole process */
	unsigned long long cgroup_id; /* the sender's cgroup v2 id: --containers names its container */
};

#endif /* __SIGSNOOP_H */
