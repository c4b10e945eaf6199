// SPDX-License-Identifier: GPL-2.0
/// Trace mount and umount calls, and the new mount API: fsopen, fsconfig, fsmount, move_mount.
///
/// Hooks the syscalls tracepoints of each call, enter and exit: the enter
/// program keeps the arguments per thread, the exit program reads the strings
/// they point to (after the kernel has faulted them in) and emits one event
/// with the result and the time spent. mount_setattr (5.12) and the 6.8 calls
/// (statmount, listmount) are left out: 5.10 has no such tracepoints and a
/// missing tracepoint would fail the whole load there.
/// @runner {"timestamp": "t", "detailed": "d"}
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "mountsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define FSCONFIG_SET_STRING 1 /* fsconfig cmds whose value is a string */
#define FSCONFIG_SET_PATH 3
#define FSCONFIG_SET_PATH_EMPTY 4

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;

struct call_args {
	unsigned long long start;
	unsigned long long flags;
	unsigned long long data_flags;
	const char *source;
	const char *target;
	const char *fstype;
	const char *data;
	unsigned int op;
	int fd;
};

/* A call in flight, from its enter to its exit: one per thread at most. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct call_args);
} inflight SEC(".maps");

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

static __always_inline int enter(struct call_args *a)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;

	if (targ_pid && targ_pid != (pid_t)(id >> 32))
		return 0;
	if (!container_allowed(bpf_get_current_cgroup_id()))
		return 0;
	a->start = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&inflight, &tid, a, BPF_ANY);
	return 0;
}

static __always_inline void read_str(char *dst, __u32 size, const char *src)
{
	if (!src || bpf_probe_read_user_str(dst, size, src) < 0)
		dst[0] = 0;
}

static __always_inline int leave(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct call_args *a = bpf_map_lookup_elem(&inflight, &tid);
	struct event *e;

	if (!a)
		return 0; /* filtered out at enter, or entered before we attached */
	struct call_args c = *a;

	bpf_map_delete_elem(&inflight, &tid);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		return 0;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	e->ts = bpf_ktime_get_boot_ns();
	e->delta = e->ts - c.start;
	e->pid = id >> 32;
	e->tid = tid;
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	e->op = c.op;
	e->flags = c.flags;
	e->data_flags = c.data_flags;
	e->fd = c.fd;
	e->ret = ret;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	read_str(e->source, sizeof(e->source), c.source);
	read_str(e->target, sizeof(e->target), c.target);
	read_str(e->fstype, sizeof(e->fstype), c.fstype);
	read_str(e->data, sizeof(e->data), c.data);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mount")
int mount_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct call_args a = {.op = OP_MOUNT, .fd = -1};

	a.source = (const char *)ctx->args[0];
	a.target = (const char *)ctx->args[1];
	a.fstype = (const char *)ctx->args[2];
	a.flags = ctx->args[3];
	a.data = (const char *)ctx->args[4];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_umount")
int umount_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct call_args a = {.op = OP_UMOUNT, .fd = -1};

	a.target = (const char *)ctx->args[0];
	a.flags = ctx->args[1];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_fsopen")
int fsopen_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct call_args a = {.op = OP_FSOPEN, .fd = -1};

	a.fstype = (const char *)ctx->args[0];
	a.flags = ctx->args[1];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_fsconfig")
int fsconfig_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct call_args a = {.op = OP_FSCONFIG};
	unsigned int cmd = ctx->args[1];

	a.fd = ctx->args[0];
	a.flags = cmd;
	a.source = (const char *)ctx->args[2]; /* the key */
	if (cmd == FSCONFIG_SET_STRING || cmd == FSCONFIG_SET_PATH || cmd == FSCONFIG_SET_PATH_EMPTY)
		a.data = (const char *)ctx->args[3];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_fsmount")
int fsmount_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct call_args a = {.op = OP_FSMOUNT};

	a.fd = ctx->args[0];
	a.flags = ctx->args[1];
	a.data_flags = ctx->args[2];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_move_mount")
int move_mount_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct call_args a = {.op = OP_MOVE_MOUNT};

	a.fd = ctx->args[0];
	a.source = (const char *)ctx->args[1];
	a.target = (const char *)ctx->args[3];
	a.flags = ctx->args[4];
	return enter(&a);
}

#define EXIT_PROGRAM(name)					\
SEC("tracepoint/syscalls/sys_exit_" #name)			\
int name##_exit(struct trace_event_raw_sys_exit *ctx)		\
{								\
	return leave(ctx->ret);					\
}

EXIT_PROGRAM(mount)
EXIT_PROGRAM(umount)
EXIT_PROGRAM(fsopen)
EXIT_PROGRAM(fsconfig)
EXIT_PROGRAM(fsmount)
EXIT_PROGRAM(move_mount)

char LICENSE[] SEC("license") = "GPL";
