/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __OPENSNOOP_H
#define __OPENSNOOP_H

#define TASK_COMM_LEN 16
#define FNAME_LEN 256

/* Which system call opened the file. */
enum open_syscall {
	SYS_OPEN = 0,
	SYS_OPENAT = 1,
	SYS_OPENAT2 = 2,
	SYS_CREAT = 3,
};

/* One open, as the ring buffer carries it. */
struct event {
	unsigned long long ts;        /* boot-time clock, ns */
	unsigned long long cgroup_id; /* the process's cgroup v2 id */
	int pid;                      /* process (thread group) id */
	int tid;                      /* thread id */
	int uid;
	int ret;                      /* the fd, or -errno */
	int flags;                    /* open flags as passed */
	unsigned int mode;            /* creation mode as passed */
	enum open_syscall syscall;
	unsigned short fname_len;     /* bytes in fname before its NUL */
	unsigned char truncated;      /* fname holds only the tail of a longer name */
	unsigned char full;           /* fname was resolved against the cwd or dirfd */
	char comm[TASK_COMM_LEN];
	char fname[FNAME_LEN];
};

/* Key of the in-kernel count of opens: who, and how it ended. */
struct open_key {
	char comm[TASK_COMM_LEN];
	int err; /* 0 for success, else the errno */
};

#endif /* __OPENSNOOP_H */
