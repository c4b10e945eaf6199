// SPDX-License-Identifier: GPL-2.0
/// Trace exec() calls: who ran what, with its arguments, parent and result.
///
/// The syscalls' own tracepoints (syscalls/sys_enter_execve, execveat and
/// their exits) exist on every kernel we support with the same layout: the
/// enter copies the arguments while the caller's memory still holds them
/// and keeps the event in a map by thread id; the exit adds the result and
/// the new program's name, then sends it with only the bytes the arguments
/// use. Failed exec()s are dropped in the kernel unless -x asks for them,
/// as libbpf-tools' execsnoop does. -l searches the command line in the
/// kernel too, in one pass of a rolling hash (a window of LINE's length).
/// @runner {"elapsed": "t"}
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "execsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define INVALID_UID ((uid_t)-1)

/// Include failed exec()s
/// @cmdarg {"short": "x", "long": "fails"}
const volatile bool include_failed = false;
/// Trace this UID only
/// @cmdarg {"short": "u", "long": "uid", "metavar": "UID", "convert": "uid"}
const volatile uid_t targ_uid = INVALID_UID;
/* Exact cgroup, not its descendants: bpf_get_current_ancestor_cgroup_id is
 * a tracing helper only from Linux 5.14, and this must load on 5.10. */
/// Trace processes in this cgroup only (a cgroup v2 path; that cgroup itself, not its children)
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "PATH", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;
/// Only print commands whose name contains this text
/// @cmdarg {"short": "n", "long": "name", "metavar": "NAME"}
const volatile char targ_name[TASK_COMM_LEN] = "";
/// Maximum number of arguments parsed and displayed (at most 60)
/// @cmdarg {"long": "max-args", "metavar": "MAX_ARGS"}
const volatile int max_args = DEFAULT_MAXARGS;
/// Only print commands whose arguments (the command line, as shown) contain this text
/// @cmdarg {"short": "l", "long": "line", "metavar": "LINE"}
const volatile char targ_line[LINE_LEN] = "";
/// Add quotemarks (") around arguments
/// @cmdarg {"short": "q", "long": "quote"}
const volatile bool quote_args = false;
/// Print the UID column
/// @cmdarg {"short": "U", "long": "print-uid"}
const volatile bool print_uid = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/* exec()s between their enter and exit, by thread id. Preallocated (tracing
 * programs' hash maps should be): 1024 in flight at once cost 7.8 MiB. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct event);
} execs SEC(".maps");

/* Where an event is built before it goes into execs: too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

/* Events the ring had no room for, counted per CPU: never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		(*n)++;
}

static __always_inline bool name_matches(const char *comm)
{
	if (!targ_name[0])
		return true;
	for (int start = 0; start < TASK_COMM_LEN; start++) {
		for (int i = 0; start + i < TASK_COMM_LEN; i++) {
			char want = targ_name[i];

			if (!want)
				return true;
			if (comm[start + i] != want)
				break;
		}
		if (!comm[start])
			return false;
	}
	return false;
}

#define HASH_MUL 1099511628211ULL /* FNV's 64-bit prime: odd, so no byte's weight vanishes */
#define LINE_BLOCK 64             /* -l: bytes searched between two looks at the command line's end */
/* x as an opaque register: clang cannot turn the arithmetic on it back into a compare and branch */
#define OPAQUE(x) asm volatile("" : "+r"(x))

/* -l: whether the command line args[0, size) holds targ_line, in one pass:
 * a polynomial hash of the last `len` bytes, rolled a byte at a time, is
 * compared with targ_line's (arithmetic mod 2^64; a false match needs two
 * texts of one length with one 64-bit hash). A search of every start with an
 * inner compare would cost the verifier ARGS_LEN * LINE_LEN steps. The byte
 * loop has no branch on event data (a match and the end are masks): 5.10's
 * verifier refused a branch per byte (each one a pending state, 8192 at
 * most); targ_line is read-only data, so len and want are constants to it.
 * The end is looked at once per LINE_BLOCK bytes. */
static __always_inline bool line_matches(const struct event *e, __u32 size)
{
	__u64 want = 0, drop = 1, h = 0, found = 0;
	__u32 len = 0;

	if (!targ_line[0])
		return true;
	for (int i = 0; i < LINE_LEN; i++) {
		if (!targ_line[i])
			break;
		want = want * HASH_MUL + (unsigned char)targ_line[i];
		drop *= HASH_MUL; /* HASH_MUL^len: the weight of the byte leaving the window */
		len++;
	}
	for (__u32 block = 0; block < ARGS_LEN / LINE_BLOCK; block++) {
		if (block * LINE_BLOCK >= size)
			break;
		for (__u32 k = 0; k < LINE_BLOCK; k++) {
			__u32 i = block * LINE_BLOCK + k;
			__u64 nonzero, before_end;

			h = h * HASH_MUL + (unsigned char)e->args[i];
			if (i >= len && i - len < ARGS_LEN)
				h -= drop * (unsigned char)e->args[i - len];
			nonzero = (h ^ want) | -(h ^ want); /* bit 63 set unless h == want */
			before_end = (__u64)i - size;        /* bit 63 set while i < size */
			OPAQUE(nonzero);
			OPAQUE(before_end);
			if (i + 1 >= len)
				found |= ((nonzero >> 63) ^ 1) & (before_end >> 63);
		}
		if (found)
			return true;
	}
	return false;
}

static __always_inline int enter(const char *const *argv)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	uid_t uid = (__u32)bpf_get_current_uid_gid();
	__u64 cgid = bpf_get_current_cgroup_id();

	if (targ_uid != INVALID_UID && targ_uid != uid)
		return 0;
	if (targ_cgroup && cgid != targ_cgroup)
		return 0;
	if (!container_allowed(cgid))
		return 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	e->pid = id >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = uid;
	e->cgroup_id = cgid;
	e->ret = 0;
	e->args_count = 0;
	e->args_truncated = 0;

	/* Each argument goes in at `off` and its NUL becomes a space: the
	 * table shows the command line as one string, -j as one field. */
	__u32 off = 0;
	int limit = max_args < TOTAL_MAX_ARGS ? max_args : TOTAL_MAX_ARGS;
	for (int i = 0; i < TOTAL_MAX_ARGS; i++) {
		const char *arg = NULL;

		if (i >= limit) {
			if (!bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) && arg)
				e->args_truncated = 1;
			break;
		}
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			break;
		/* -q: `"arg" `, its closing quote where its NUL was */
		__u32 at = off + (quote_args ? 1 : 0);
		if (at > ARGS_LEN - ARGSIZE - 1)
			break;
		if (quote_args && off < ARGS_LEN)
			e->args[off] = '"';
		long n = bpf_probe_read_user_str(&e->args[at], ARGSIZE, arg);
		if (n <= 0 || n > ARGSIZE)
			break;
		if (n == ARGSIZE)
			e->args_truncated = 1;
		__u32 last = at + n - 1;
		if (quote_args) {
			if (last < ARGS_LEN)
				e->args[last] = '"';
			last++;
		}
		if (last < ARGS_LEN)
			e->args[last] = ' ';
		off = last + 1;
		e->args_count++;
	}
	__u32 end = off ? off - 1 : 0;
	if (end < ARGS_LEN)
		e->args[end] = '\0';
	e->args_size = off ? off : 1;
	if (bpf_map_update_elem(&execs, &tid, e, BPF_ANY))
		count_lost(); /* 1024 exec()s in flight at once: this one is lost, and counted */
	return 0;
}

static __always_inline int leave(long ret, bool execveat)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *e = bpf_map_lookup_elem(&execs, &tid);

	if (!e)
		return 0;
	if (ret < 0 && !include_failed)
		goto done;
	e->ret = ret;
	e->execveat = execveat;
	/* After a successful exec the name is the new program's */
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (!name_matches(e->comm))
		goto done;
	if (!line_matches(e, e->args_size))
		goto done;
	__u64 size = offsetof(struct event, args) + e->args_size;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, wakeup_flags(&events)))
		count_lost();
done:
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret, false);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret, true);
}

char LICENSE[] SEC("license") = "GPL";
