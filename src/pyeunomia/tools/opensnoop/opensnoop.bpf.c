// SPDX-License-Identifier: GPL-2.0
/// Trace every file open on the machine: open, openat, openat2 and creat.
///
/// Traced at syscall exit only: the arguments are still in the task's saved
/// registers there, so no enter program and no hash map round trip is needed.
/// Events are reserved in a ring buffer and written in place; the reader is
/// woken once a batch has built up, not per event.
///
/// Kernels before 5.17 lack a helper that takes (bpf_task_pt_regs 5.15,
/// bpf_get_current_task_btf 5.11, bpf_loop 5.17): each trace_exit_X there has
/// a trace_exit_X__compat alternative, paired with a trace_enter_X__compat
/// that keeps the arguments in a hash map until the exit, and walks full
/// paths with a bounded loop. The loader picks them by probing the helpers.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "opensnoop.bpf.h"
#include "../include/container_filter.bpf.h"

#define INVALID_UID ((uid_t)-1)
#define AT_FDCWD -100
#define O_ACCMODE 3
#define O_CREAT_WRONLY_TRUNC (01000 | 01 | 0100) /* what creat() means */
#define PATH_DEPTH 64 /* directories and mounts walked for a full path */
#define PART_MASK (FNAME_LEN - 1)

/// Trace only this process id (0: all)
const volatile pid_t targ_pid = 0;
/// Trace only this thread id (0: all)
const volatile pid_t targ_tid = 0;
/// Trace only this user id (-1: all users)
const volatile uid_t targ_uid = INVALID_UID;
/// Show only failed opens
const volatile bool targ_failed = false;
/// Show only processes whose name contains this text
const volatile char targ_comm[TASK_COMM_LEN] = "";
/// Match the process name exactly rather than as a substring
const volatile bool targ_comm_exact = false;
/// Show only opens with any of these flag bits set (O_CREAT is 0100)
const volatile __u32 targ_flags = 0;
/// Show only opens with these access modes: bit 0 O_RDONLY, 1 O_WRONLY, 2 O_RDWR
const volatile __u32 targ_accmodes = 0;
/// Show only processes in this cgroup v2 id or below it (0: all)
const volatile __u64 targ_cgroup = 0;
/// The depth of targ_cgroup below the cgroup v2 root
const volatile __u32 targ_cgroup_level = 0;
/// Resolve relative names against the working directory or dirfd
const volatile bool full_path = false;
/// Wake the reader once this many bytes wait in the ring (0: every event)
const volatile __u64 wakeup_bytes = 1 << 20;
/// Wake the reader at least this often while events arrive, in ns
const volatile __u64 wakeup_interval_ns = 10 * 1000 * 1000;
/// Send each open to userspace through the ring buffer
const volatile bool emit_events = true;
/// Count opens per (comm, errno) in the opens map, for exporters
const volatile bool count_opens = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Opens per process name and result, counted in the kernel: an exporter
 * reads it at scrape time, so a high open rate costs userspace nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct open_key);
	__type(value, __u64);
} opens SEC(".maps");

/* When the reader was last woken: events wait at most wakeup_interval_ns,
 * and a busy machine costs one wakeup per interval, not one per event.
 * Static, so it is no option; a race between CPUs costs one extra wakeup. */
static __u64 last_wakeup_ns;
/* Until when (CLOCK_BOOTTIME ns, the clock of `now` below) the reader looks at
 * the ring every wakeup_interval_ns on its own (runner/promise.py writes it
 * through the mmapped .bss): no wakeup before then but for a full ring. A
 * global (libbpf maps .bss only when it holds one), written while running:
 * no option (format/options.py). */
__u64 reader_polls_until_ns;

/* Opens the opens map had no room for (a new comm and result while it holds
 * max_entries keys): counted, not dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} opens_overflow SEC(".maps");

/* Events the ring had no room for, counted per CPU: never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* The arguments of an open in flight, from its enter to its exit, on kernels
 * that cannot read them from the task's registers at exit. A __compat map:
 * the loader creates it only with the __compat programs. Preallocated, as
 * tracing programs' hash maps must be: on 5.10 a run-time allocated one drew
 * the verifier's "unsafe" warning, and guests locked up one run in five. */
struct open_args {
	const char *path;
	__u64 flags;
	__u64 mode;
	int dfd;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* opens in flight at once: one per thread inside open(2) */
	__type(key, __u32);
	__type(value, struct open_args);
} args__compat SEC(".maps");

/* Room to build a full path right to left. Offsets and sizes are masked to
 * FNAME_LEN - 1, so the verifier can see every write stays inside. */
struct path_scratch {
	char buf[FNAME_LEN * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} scratch SEC(".maps");

static __always_inline bool comm_matches(const char *comm)
{
	if (!targ_comm[0])
		return true;
	for (int start = 0; start < TASK_COMM_LEN; start++) {
		for (int i = 0; start + i < TASK_COMM_LEN; i++) {
			char want = targ_comm[i];

			if (!want) /* all of targ_comm matched here */
				return !targ_comm_exact || !comm[start + i];
			if (comm[start + i] != want)
				break;
		}
		if (targ_comm_exact || !comm[start])
			return false;
	}
	return false;
}

static __always_inline bool flags_match(__u32 flags)
{
	if (!targ_flags && !targ_accmodes)
		return true;
	if (flags & targ_flags)
		return true;
	return targ_accmodes & (1u << (flags & O_ACCMODE));
}

static __always_inline void count_open(long ret)
{
	struct open_key key = {.err = ret < 0 ? -ret : 0};
	__u64 one = 1, *n;

	bpf_get_current_comm(key.comm, sizeof(key.comm));
	if (!comm_matches(key.comm))
		return;
	n = bpf_map_lookup_elem(&opens, &key);
	if (!n) {
		if (!bpf_map_update_elem(&opens, &key, &one, BPF_NOEXIST))
			return;
		n = bpf_map_lookup_elem(&opens, &key); /* another CPU added it first */
	}
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	__u32 zero = 0;
	n = bpf_map_lookup_elem(&opens_overflow, &zero);
	if (n)
		*n += 1;
}

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
}

/* The directory a relative name is resolved against: the cwd, or dirfd's file. */
static __always_inline bool base_dir(struct task_struct *task, int dfd, struct path *out)
{
	if (dfd == AT_FDCWD) {
		/* read task->fs, not dereference it: task is a plain pointer in the compat programs */
		struct fs_struct *fs = BPF_CORE_READ(task, fs);
		return fs && !bpf_core_read(out, sizeof(*out), &fs->pwd);
	}
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (unsigned int)dfd >= BPF_CORE_READ(fdt, max_fds))
		return false;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	bpf_core_read(&file, sizeof(file), &fds[dfd]);
	return file && !bpf_core_read(out, sizeof(*out), &file->f_path);
}

/* One step of the walk from a directory up to the root. */
struct walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	char *buf;
	int pos; /* where the path built so far starts in buf */
	bool complete;
};

static long walk_up(__u32 index, struct walk *w)
{
	/* locals, not w->field, inside BPF_CORE_READ: struct walk is ours, not the kernel's */
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;

	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *parent_mnt = BPF_CORE_READ(mnt, mnt_parent);

		if (parent_mnt == mnt) {
			w->complete = true;
			return 1;
		}
		/* cross to the mount this one sits on */
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = parent_mnt;
		w->vfsmnt = (void *)parent_mnt + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry) {
		w->complete = true;
		return 1;
	}
	struct qstr name = BPF_CORE_READ(dentry, d_name);
	int start = w->pos - (int)name.len - 1;
	if (start < 0)
		return 1; /* no room: what is built is the tail of the path */
	w->buf[start & PART_MASK] = '/';
	bpf_probe_read_kernel(&w->buf[(start + 1) & PART_MASK], name.len & PART_MASK, name.name);
	w->pos = start;
	w->dentry = parent;
	return 0;
}

/* Rewrite e->fname, a relative name, as an absolute path: walk from the base
 * directory up to the root, crossing mounts, prepending each name. When the
 * path does not fit, its tail is kept and the event is marked truncated. */
static __always_inline void resolve_full_path(struct event *e, struct task_struct *task, int dfd,
					      bool with_bpf_loop)
{
	__u32 zero = 0;
	struct path_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct path base;

	if (!s || !base_dir(task, dfd, &base))
		return;
	__u32 name_len = e->fname_len & PART_MASK;
	struct walk w = {
		.dentry = base.dentry,
		.vfsmnt = base.mnt,
		.mnt = (void *)base.mnt - bpf_core_field_offset(struct mount, mnt),
		.buf = s->buf,
		.pos = FNAME_LEN - 2 - name_len,
	};
	if (w.pos < 0)
		return; /* the name alone fills the event */
	s->buf[w.pos & PART_MASK] = '/';
	bpf_probe_read_kernel(&s->buf[(w.pos + 1) & PART_MASK], name_len, e->fname);
	s->buf[FNAME_LEN - 1] = 0;
	if (with_bpf_loop) {
		bpf_loop(PATH_DEPTH, walk_up, &w, 0);
	} else {
		/* a constant at each call site: the compat programs hold no bpf_loop call
		 * and no callback reference, which kernels before 5.13 refuse outright */
		for (int i = 0; i < PATH_DEPTH; i++)
			if (walk_up(i, &w))
				break;
	}
	bpf_probe_read_kernel(e->fname, sizeof(e->fname), &s->buf[w.pos & PART_MASK]);
	e->fname_len = FNAME_LEN - 1 - w.pos;
	e->truncated |= !w.complete;
	e->full = 1;
}

/* The process filters that need no arguments: pid, tid, uid, cgroup. */
static __always_inline bool task_wanted(__u64 id, __u32 *uid)
{
	__u32 tgid = id >> 32, tid = (__u32)id;

	if (targ_pid && targ_pid != tgid)
		return false;
	if (targ_tid && targ_tid != tid)
		return false;
	*uid = (__u32)bpf_get_current_uid_gid();
	if (targ_uid != INVALID_UID && targ_uid != *uid)
		return false;
	if (targ_cgroup && bpf_get_current_ancestor_cgroup_id(targ_cgroup_level) != targ_cgroup)
		return false;
	if (filter_cgroup_map && !container_allowed(bpf_get_current_cgroup_id()))
		return false;
	return true;
}

/* An open's arguments from the syscall's own argument list (registers at
 * exit, the tracepoint's args at enter): dirfd, path, flags, mode. */
static __always_inline void read_args(struct open_args *a, enum open_syscall syscall, unsigned long arg0,
				      unsigned long arg1, unsigned long arg2, unsigned long arg3)
{
	a->dfd = AT_FDCWD;
	a->mode = 0;
	if (syscall == SYS_OPENAT || syscall == SYS_OPENAT2) {
		a->dfd = arg0;
		a->path = (const char *)arg1;
		if (syscall == SYS_OPENAT) {
			a->flags = arg2;
			a->mode = arg3;
		} else {
			struct open_how how = {};
			bpf_probe_read_user(&how, sizeof(how), (void *)arg2);
			a->flags = how.flags;
			a->mode = how.mode;
		}
	} else {
		a->path = (const char *)arg0;
		if (syscall == SYS_OPEN) {
			a->flags = arg1;
			a->mode = arg2;
		} else {
			a->flags = O_CREAT_WRONLY_TRUNC;
			a->mode = arg1;
		}
	}
}

/* Everything after the arguments are known: filters, counting, the event. */
static __always_inline int emit(long ret, enum open_syscall syscall, __u64 id, __u32 uid, struct open_args *a,
				struct task_struct *task, bool with_bpf_loop)
{
	__u32 tgid = id >> 32, tid = (__u32)id;
	const char *path = a->path;
	__u64 flags = a->flags, mode = a->mode;
	int dfd = a->dfd;

	if (targ_failed && ret >= 0)
		return 0;
	if (!flags_match(flags))
		return 0;
	if (count_opens)
		count_open(ret);
	if (!emit_events)
		return 0;

	/* The name is checked before a reservation: with the ring full, an open
	 * that -n filters out is no lost event. */
	char comm[TASK_COMM_LEN];
	bpf_get_current_comm(comm, sizeof(comm));
	if (!comm_matches(comm))
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	__builtin_memcpy(e->comm, comm, sizeof(e->comm));
	__u64 now = bpf_ktime_get_boot_ns();
	e->ts = now;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = tgid;
	e->tid = tid;
	e->uid = uid;
	e->ret = ret;
	e->flags = flags;
	e->mode = mode;
	e->syscall = syscall;
	e->full = 0;
	long n = bpf_probe_read_user_str(e->fname, sizeof(e->fname), path);
	e->fname_len = n > 0 ? n - 1 : 0;
	e->truncated = n == sizeof(e->fname);
	if (full_path && n > 1 && e->fname[0] != '/')
		resolve_full_path(e, task, dfd, with_bpf_loop);

	__u64 wake = BPF_RB_NO_WAKEUP;
	if (!wakeup_bytes || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ||
	    (now >= reader_polls_until_ns && now - last_wakeup_ns >= wakeup_interval_ns)) {
		wake = BPF_RB_FORCE_WAKEUP;
		last_wakeup_ns = now;
	}
	bpf_ringbuf_submit(e, wake);
	return 0;
}

static __always_inline int trace_exit(struct trace_event_raw_sys_exit *ctx, enum open_syscall syscall)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 uid;

	if (!task_wanted(id, &uid))
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct open_args a;

	read_args(&a, syscall, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM2_SYSCALL(regs),
		  PT_REGS_PARM3_SYSCALL(regs), PT_REGS_PARM4_SYSCALL(regs));
	return emit(ctx->ret, syscall, id, uid, &a, task, true);
}

/* The compat pair: keep the arguments at enter, use them at exit. */
static __always_inline int trace_enter_compat(struct trace_event_raw_sys_enter *ctx, enum open_syscall syscall)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 uid, tid = (__u32)id;
	struct open_args a;

	if (!task_wanted(id, &uid))
		return 0;
	read_args(&a, syscall, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
	bpf_map_update_elem(&args__compat, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int trace_exit_compat(struct trace_event_raw_sys_exit *ctx, enum open_syscall syscall)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid(), tid = (__u32)id;
	struct open_args *a = bpf_map_lookup_elem(&args__compat, &tid);

	if (!a)
		return 0; /* filtered out at enter, or entered before we attached */
	struct open_args copy = *a;

	bpf_map_delete_elem(&args__compat, &tid);
	return emit(ctx->ret, syscall, id, uid, &copy, (struct task_struct *)bpf_get_current_task(), false);
}

#define OPEN_PROGRAMS(name, syscall)							\
SEC("tracepoint/syscalls/sys_exit_" #name)						\
int trace_exit_##name(struct trace_event_raw_sys_exit *ctx)				\
{											\
	return trace_exit(ctx, syscall);						\
}											\
SEC("tracepoint/syscalls/sys_exit_" #name)						\
int trace_exit_##name##__compat(struct trace_event_raw_sys_exit *ctx)			\
{											\
	return trace_exit_compat(ctx, syscall);						\
}											\
SEC("tracepoint/syscalls/sys_enter_" #name)						\
int trace_enter_##name##__compat(struct trace_event_raw_sys_enter *ctx)			\
{											\
	return trace_enter_compat(ctx, syscall);					\
}

OPEN_PROGRAMS(open, SYS_OPEN)
OPEN_PROGRAMS(openat, SYS_OPENAT)
OPEN_PROGRAMS(openat2, SYS_OPENAT2)
OPEN_PROGRAMS(creat, SYS_CREAT)

char LICENSE[] SEC("license") = "GPL";
