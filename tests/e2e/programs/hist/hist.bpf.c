// SPDX-License-Identifier: GPL-2.0
/// Counts the opens of one process in a log2 histogram of a chosen value.
/// @brief log2 histogram of a chosen value, one count per openat
/// @details Every openat(2) by --target_pid adds one to the slot of log2(--value).
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "hist.h"

const volatile pid_t target_pid = 0;
/// the value whose log2 slot each open counts in
const volatile u64 value = 1;

/// @sample {"interval": 300, "type": "log2_hist", "unit": "calls"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

static __always_inline u32 log2_slot(u64 v)
{
	u32 slot = 0;
	for (int i = 0; i < 64; i++) {
		if (v <= 1)
			break;
		v >>= 1;
		slot++;
	}
	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int count_open(void *ctx)
{
	static const struct hist zero;
	u32 key = 0;
	struct hist *h;

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return 0;
	}
	__sync_fetch_and_add(&h->slots[log2_slot(value)], 1);
	bpf_get_current_comm(&h->comm, sizeof(h->comm));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
