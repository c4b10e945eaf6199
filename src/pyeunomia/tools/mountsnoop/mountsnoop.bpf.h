/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __MOUNTSNOOP_H
#define __MOUNTSNOOP_H

#define TASK_COMM_LEN 16
#define FS_LEN 32
#define PATH_LEN 256
#define DATA_LEN 128

/* Which call of the mount family it was. */
enum mount_op {
	OP_MOUNT = 0,
	OP_UMOUNT = 1,
	OP_FSOPEN = 2,
	OP_FSCONFIG = 3,
	OP_FSMOUNT = 4,
	OP_MOVE_MOUNT = 5,
};

/* One call, as the ring buffer carries it. Per call: mount(source, target,
 * fstype, flags, data); umount(target, flags); fsopen(fstype, flags);
 * fsconfig(fd in fd, cmd in flags, key in source, value in data);
 * fsmount(fd in fd, flags, attr flags in data_flags); move_mount(from dirfd
 * in fd, from path in source, to path in target, flags). */
struct event {
	unsigned long long ts;    /* boot-time clock at exit, ns */
	unsigned long long delta; /* time in the call, ns */
	/// @column {"header": "COMM", "width": 16, "left": true}
	char comm[TASK_COMM_LEN];
	/// @column {"header": "PID", "width": 7}
	int pid;
	/// @column {"header": "TID", "width": 7}
	int tid;
	/// @column {"header": "MNT_NS", "width": 11}
	unsigned int mnt_ns;
	/// @column {"header": "CALL", "width": 10, "left": true, "decoder": {"name": "static_map", "map": {"0": "mount", "1": "umount", "2": "fsopen", "3": "fsconfig", "4": "fsmount", "5": "move_mount"}}}
	unsigned int op; /* enum mount_op */
	/// @column {"header": "SOURCE", "left": true}
	char source[PATH_LEN];
	/// @column {"header": "TARGET", "left": true}
	char target[PATH_LEN];
	/// @column {"header": "FSTYPE", "width": 8, "left": true}
	char fstype[FS_LEN];
	/// @column {"header": "FLAGS", "width": 8}
	unsigned long long flags;
	/// @column {"header": "DATA", "left": true, "extended": true}
	char data[DATA_LEN];
	unsigned long long data_flags;
	unsigned long long cgroup_id; /* the caller's cgroup v2 id: --containers names its container */
	int fd;
	/// @column {"header": "RET", "width": 4, "decoder": "result"}
	int ret; /* 0 or an fd, or -errno */
};

#endif /* __MOUNTSNOOP_H */
