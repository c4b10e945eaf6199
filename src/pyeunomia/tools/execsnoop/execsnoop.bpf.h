/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __EXECSNOOP_H
#define __EXECSNOOP_H

#define TASK_COMM_LEN 16
#define ARGSIZE 128          /* bytes kept of each argument, as libbpf-tools */
#define TOTAL_MAX_ARGS 60    /* the most --max-args may ask for */
#define DEFAULT_MAXARGS 20
#define ARGS_LEN (TOTAL_MAX_ARGS * ARGSIZE)
#define LINE_LEN 64          /* -l LINE: its most bytes, NUL included */

/* One exec(), as the ring buffer carries it: sent only as long as the
 * arguments it holds (args is last), so a short command line is a short record. */
struct event {
	/// @column {"header": "UID", "width": 6, "left": true, "when": "print_uid"}
	unsigned int uid;      /* first, as libbpf-tools' -U prints it */
	/// @column {"header": "PCOMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "PID", "width": 6, "left": true}
	int pid;
	/// @column {"header": "PPID", "width": 6, "left": true}
	int ppid;
	/// @column {"header": "RET", "width": 3, "decoder": "errno"}
	int ret;               /* 0, or -errno of a failed exec */
	int args_count;        /* arguments copied into args */
	unsigned int args_size; /* bytes used in args, its final NUL included */
	unsigned char args_truncated; /* more arguments than --max-args, or one longer than ARGSIZE */
	unsigned char execveat;       /* 1: execveat(2), 0: execve(2) */
	unsigned long long cgroup_id; /* cgroup v2 id: --containers names its container */
	/* the arguments joined by spaces (an argument's own spaces are not quoted; -q quotes each
	 * argument, its own quotes left as they are) */
	/// @column {"header": "ARGS", "left": true}
	char args[ARGS_LEN];
};

#endif /* __EXECSNOOP_H */
