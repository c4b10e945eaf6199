/// openat and close of one process, each into its own ring buffer with its
/// own struct: `opens` names its struct, `closes` is told by size
/// (tests/e2e/test_export_types.py).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tworings.h"

/// Trace only this process (0: every process)
const volatile int targ_pid = 0;

/// @export open_ev
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} opens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} closes SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	struct open_ev *e;

	if (targ_pid && (int)(bpf_get_current_pid_tgid() >> 32) != targ_pid)
		return 0;
	e = bpf_ringbuf_reserve(&opens, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->dfd = (int)ctx->args[0];
	bpf_probe_read_user_str(&e->fname, sizeof(e->fname), (const char *)ctx->args[1]);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct close_ev e = {};

	if (targ_pid && (int)(bpf_get_current_pid_tgid() >> 32) != targ_pid)
		return 0;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.fd = (int)ctx->args[0];
	e.ts = bpf_ktime_get_ns();
	bpf_ringbuf_output(&closes, &e, sizeof(e), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
