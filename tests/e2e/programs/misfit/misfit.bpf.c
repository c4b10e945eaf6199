/// A deliberate mismatch: `wrong` is said to carry struct event (16 bytes)
/// but gets 24-byte records; `right` (a perf event array) gets struct event
/// itself. ecli must print `wrong`'s records in hex, never decoded
/// (tests/e2e/test_export_types.py).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "misfit.h"

/// Trace only this process (0: every process)
const volatile int targ_pid = 0;

struct wide {
	int pid;
	int fd;
	unsigned long long count;
	unsigned long long extra;
};

/// @export event
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} wrong SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} right SEC(".maps");

unsigned long long seen = 0;

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct wide w = {};
	struct event e = {};

	if (targ_pid && (int)(bpf_get_current_pid_tgid() >> 32) != targ_pid)
		return 0;
	seen++;
	w.pid = e.pid = bpf_get_current_pid_tgid() >> 32;
	w.fd = e.fd = (int)ctx->args[0];
	w.count = e.count = seen;
	w.extra = 0x1122334455667788ULL;
	bpf_ringbuf_output(&wrong, &w, sizeof(w), 0);
	bpf_perf_event_output(ctx, &right, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
