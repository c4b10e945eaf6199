// SPDX-License-Identifier: GPL-2.0
/// Print the command lines entered in every running bash.
///
/// A uretprobe on readline(), which Debian's bash carries in its own text and
/// exports (other builds take it from libreadline): its return value is the
/// line just read. The binary is named `bash`, found on PATH by libbpf when the
/// probe attaches, so the inode probed is the one every bash process maps;
/// `-s PATH` probes another binary or libreadline.so instead.
/// Only processes named bash are reported, as other readline users (python,
/// gdb) share a libreadline where one is probed.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bashreadline.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;

/// The binary or libreadline.so whose readline() to probe (default: bash, found on PATH)
/// @cmdarg {"short": "s", "long": "shared", "metavar": "PATH"}
/// @binary "bash"
const volatile char readline_binary[128] = "";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} events SEC(".maps");

/* Events the ring had no room for: counted, never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

SEC("uretprobe/bash:readline")
int BPF_KRETPROBE(readline_return, const char *line)
{
	__u64 id = bpf_get_current_pid_tgid();
	char comm[TASK_COMM_LEN];
	__u32 zero = 0;
	struct event *e;

	if (!line)
		return 0; /* end of input */
	if (targ_pid && targ_pid != (pid_t)(id >> 32))
		return 0;
	__u64 cgid = bpf_get_current_cgroup_id();

	if (!container_allowed(cgid))
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] != 'b' || comm[1] != 'a' || comm[2] != 's' || comm[3] != 'h' || comm[4] != 0)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		return 0;
	}
	e->ts = bpf_ktime_get_boot_ns();
	e->pid = id >> 32;
	e->cgroup_id = cgid;
	__builtin_memcpy(e->comm, comm, sizeof(e->comm));
	if (bpf_probe_read_user_str(e->line, sizeof(e->line), line) < 0)
		e->line[0] = 0;
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
