/// openat of one process, entry and exit joined through a hash map of
/// struct args_t, the event sent as struct event: a header whose first
/// struct is not the event (tests/e2e/test_export_types.py).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "helperfirst.h"

/// Trace only this process (0: every process)
const volatile int targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct args_t);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct args_t args = {};

	if (targ_pid && (int)(id >> 32) != targ_pid)
		return 0;
	args.fname = (const char *)ctx->args[1];
	args.flags = (int)ctx->args[2];
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct args_t *ap = bpf_map_lookup_elem(&start, &tid);
	struct event *e;

	if (!ap)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->ts = bpf_ktime_get_ns();
		e->pid = id >> 32;
		e->ret = (int)ctx->ret;
		e->flags = ap->flags;
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		bpf_probe_read_user_str(&e->fname, sizeof(e->fname), ap->fname);
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
