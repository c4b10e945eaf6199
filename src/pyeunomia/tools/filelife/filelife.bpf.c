// SPDX-License-Identifier: GPL-2.0
/// Trace the lifespan of short-lived files: how long each file lived between its creation and its deletion.
///
/// libbpf-tools' filelife uses kprobes on vfs_create, vfs_open and vfs_unlink;
/// this kernel has no kprobes, and fentry is refused, so only the syscalls
/// tracepoints are left, which every kernel from 5.10 on has:
/// - creation: the exit of open, openat, openat2 and creat. The new fd's
///   struct file says whether this open created the file: FMODE_CREATED in
///   f_mode, set by the VFS since 4.19 (an O_CREAT open of an existing file
///   has it clear). That is exact. The file's absolute path is built from its
///   dentry up to the root, crossing mounts.
/// - deletion: the exit of unlink and unlinkat with 0. Their argument is a
///   name, not a dentry, so the absolute path is built from it (from the
///   working directory or dirfd when it is relative) and looked up.
/// Matching by path is exact for names as the kernel spells them; a deletion
/// through a name with "." or ".." components or a symlinked directory is not
/// matched (no event: never a wrong one), nor a file created by mknod, made by
/// rename or linkat, or deleted by rename over it. Paths longer than 255 bytes
/// are keyed by their first 255.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "filelife.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define FMODE_CREATED 0x100000 /* include/linux/fs.h: 0x100000 from 4.19 to 6.18 */
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define WALK_DEPTH 32 /* directories and mounts walked up to the root */
#define BUF_LEN 768   /* a path built right to left ends at END; room for a name past any masked offset */
#define END 511
#define OFF_MASK 511
#define NAME_MASK (PATH_LEN - 1)

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;

/* Files created and not yet deleted, by absolute path. An entry whose file is
 * never deleted while we run stays: max_entries bounds them (LRU: the oldest
 * goes when full). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, char[PATH_LEN]);
	__type(value, struct birth);
} births SEC(".maps");

struct unlink_args {
	const char *path;
	int dfd;
};

/* An unlink in flight, from its enter to its exit: one per thread at most. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct unlink_args);
} unlinks SEC(".maps");

/* Room to build a path right to left, and the key it becomes. Offsets are
 * masked so the verifier sees every write stay inside. */
struct scratch {
	char buf[BUF_LEN];
	char key[PATH_LEN];
};

/// @internal
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Events the ring had no room for: counted, never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Prepend the names from dentry up to the root to s->buf[pos..END]; the new
 * start, or -1 when the path did not fit or was too deep. */
static __always_inline int prepend_path(struct scratch *s, int pos, struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);

	for (int i = 0; i < WALK_DEPTH; i++) {
		if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
			struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);

			if (parent == mnt)
				return pos; /* the root of everything */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = parent;
			vfsmnt = (void *)parent + bpf_core_field_offset(struct mount, mnt);
			continue;
		}
		struct dentry *up = BPF_CORE_READ(dentry, d_parent);

		if (up == dentry)
			return pos;
		struct qstr name = BPF_CORE_READ(dentry, d_name);
		int len = name.len & NAME_MASK;

		pos -= len + 1;
		if (pos < 0)
			return -1;
		s->buf[pos & OFF_MASK] = '/';
		bpf_probe_read_kernel(&s->buf[(pos + 1) & OFF_MASK], len, name.name);
		dentry = up;
	}
	return -1;
}

/* s->key from s->buf[pos..END], zero-padded: the hash map compares all of it. */
static __always_inline void make_key(struct scratch *s, int pos)
{
	__builtin_memset(s->key, 0, sizeof(s->key));
	if (pos == END) { /* the root itself */
		s->key[0] = '/';
		return;
	}
	bpf_probe_read_kernel_str(s->key, sizeof(s->key), &s->buf[pos & OFF_MASK]);
}

/* Both ends are filtered: a file is timed only when a traced process (and
 * container) creates it and one deletes it. */
static __always_inline bool wanted(__u64 id)
{
	if (targ_pid && targ_pid != (pid_t)(id >> 32))
		return false;
	return container_allowed(bpf_get_current_cgroup_id());
}

static __always_inline struct file *file_of(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_core_read(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline int opened(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;

	if (ret < 0 || !wanted(id))
		return 0;
	struct file *file = file_of((struct task_struct *)bpf_get_current_task(), ret);

	if (!file || !(BPF_CORE_READ(file, f_mode) & FMODE_CREATED))
		return 0; /* opened an existing file */
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 0;
	s->buf[END] = 0;
	int pos = prepend_path(s, END, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt));

	if (pos < 0)
		return 0;
	make_key(s, pos);
	struct birth b = {.ts = bpf_ktime_get_boot_ns(), .pid = id >> 32};

	bpf_map_update_elem(&births, s->key, &b, BPF_ANY);
	return 0;
}

static __always_inline int unlink_enter(const char *path, int dfd, int flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct unlink_args a = {.path = path, .dfd = dfd};

	if ((flags & AT_REMOVEDIR) || !wanted(id))
		return 0;
	bpf_map_update_elem(&unlinks, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int unlink_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct unlink_args *ap = bpf_map_lookup_elem(&unlinks, &tid);

	if (!ap)
		return 0;
	struct unlink_args a = *ap;

	bpf_map_delete_elem(&unlinks, &tid);
	if (ret != 0)
		return 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 0;
	long n = bpf_probe_read_user_str(s->key, sizeof(s->key), a.path);

	if (n <= 1)
		return 0;
	if (s->key[0] != '/') {
		/* relative: prepend the directory it is relative to */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct path base;
		int len = (n - 1) & NAME_MASK;
		int pos = END - len - 1;

		if (a.dfd == AT_FDCWD) {
			base = BPF_CORE_READ(task, fs, pwd);
		} else {
			struct file *dir = file_of(task, a.dfd);

			if (!dir)
				return 0;
			base = BPF_CORE_READ(dir, f_path);
		}
		s->buf[END] = 0;
		s->buf[pos & OFF_MASK] = '/';
		bpf_probe_read_kernel(&s->buf[(pos + 1) & OFF_MASK], len, s->key);
		pos = prepend_path(s, pos, base.dentry, base.mnt);
		if (pos < 0)
			return 0;
		make_key(s, pos);
	}
	struct birth *b = bpf_map_lookup_elem(&births, s->key);

	if (!b)
		return 0; /* created before we started, or not through an open */
	struct birth born = *b;

	bpf_map_delete_elem(&births, s->key);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__u64 *lostn = bpf_map_lookup_elem(&lost, &zero);

		if (lostn)
			*lostn += 1;
		return 0;
	}
	e->ts = bpf_ktime_get_boot_ns();
	e->age = e->ts - born.ts;
	e->pid = id >> 32;
	e->tid = tid;
	e->creator_pid = born.pid;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel(e->path, sizeof(e->path), s->key);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

#define CREATE_PROGRAM(name)						\
SEC("tracepoint/syscalls/sys_exit_" #name)				\
int name##_exit(struct trace_event_raw_sys_exit *ctx)			\
{									\
	return opened(ctx->ret);					\
}

CREATE_PROGRAM(open)
CREATE_PROGRAM(openat)
CREATE_PROGRAM(openat2)
CREATE_PROGRAM(creat)

SEC("tracepoint/syscalls/sys_enter_unlink")
int unlink_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return unlink_enter((const char *)ctx->args[0], AT_FDCWD, 0);
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int unlinkat_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return unlink_enter((const char *)ctx->args[1], ctx->args[0], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_unlink")
int unlink_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return unlink_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int unlinkat_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return unlink_exit(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
