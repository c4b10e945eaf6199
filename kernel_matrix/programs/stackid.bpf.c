// SPDX-License-Identifier: GPL-2.0
/// Samples every CPU; each sample names its stacks by id in a stack trace
/// map (bpf_get_stackid), libbpf-tools style, and ecli prints them symbolized.
/// @brief on-CPU samples with stack ids
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "stackid.h"

#define MAX_STACK_DEPTH 127

char LICENSE[] SEC("license") = "GPL";

/// only this process (0: every process)
const volatile pid_t target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(u64));
	__uint(max_entries, 1024);
} stackmap SEC(".maps");

/// @intepreter {"stack_trace": {"field_map": {"pid": "tgid", "cpu_id": "cpu", "comm": "task", "kstack": "kern_stack_id", "ustack": "user_stack_id"}}}
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} samples SEC(".maps");

SEC("perf_event")
int sample_stacks(void *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct stack_sample *s;

	if (target_tgid && tgid != target_tgid)
		return 0;
	s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s)
		return 0;
	s->tgid = tgid;
	s->cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(s->task, sizeof(s->task));
	s->kern_stack_id = bpf_get_stackid(ctx, &stackmap, 0);
	s->user_stack_id = bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
	bpf_ringbuf_submit(s, 0);
	return 0;
}
