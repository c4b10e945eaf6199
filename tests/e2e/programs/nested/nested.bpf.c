// SPDX-License-Identifier: GPL-2.0
// Test program: nested structs, arrays of structs, a 2-D array and a union in
// a perf-buffer event that the program only builds as a local variable.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "nested.h"

const volatile pid_t target_pid = 0;
const volatile u32 base = 1;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int nested_event(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	struct event event = {};
	event.pid = target_pid;
	for (int i = 0; i < 2; i++) {
		event.corners[i].x = base + i;
		event.corners[i].y = -(s32)(base + i);
	}
	for (int i = 0; i < 3; i++)
		event.detail.codes[i] = base * 10 + i;
	__builtin_memcpy(event.detail.tag, "tagged", 7);
	event.detail.where.x = -1;
	event.detail.where.y = base;
	for (int r = 0; r < 2; r++)
		for (int c = 0; c < 3; c++)
			event.grid[r][c] = (u64)base * 100 + r * 10 + c;
	event.word.whole = 0x04030201;
	bpf_get_current_comm(&event.comm, sizeof(event.comm));
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &event, sizeof(event));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
