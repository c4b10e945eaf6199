// SPDX-License-Identifier: MIT
/// libc's strtol() traced with BPF_UPROBE and BPF_URETPROBE (libbpf headers
/// 1.2+), attached by library name as libbpf-tools do: its text and base on
/// the way in, its result on the way out.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "uprobes.h"

/// Only this process (0: all)
const volatile int target_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline struct event *start(void)
{
	int pid = bpf_get_current_pid_tgid() >> 32;
	struct event *e;

	if (target_pid && pid != target_pid)
		return NULL;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		__builtin_memset(e, 0, sizeof(*e));
		e->pid = pid;
	}
	return e;
}

SEC("uprobe/libc.so.6:strtol")
int BPF_UPROBE(strtol_entry, const char *text, char **end, int base)
{
	struct event *e = start();

	if (!e)
		return 0;
	e->base = base;
	bpf_probe_read_user_str(e->text, sizeof(e->text), text);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uretprobe/libc.so.6:strtol")
int BPF_URETPROBE(strtol_exit, long ret)
{
	struct event *e = start();

	if (!e)
		return 0;
	e->exit = 1;
	e->ret = ret;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
