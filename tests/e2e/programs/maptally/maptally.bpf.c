// SPDX-License-Identifier: GPL-2.0
/// Tallies the write(2) calls of one process, keeping every result in maps
/// and globals as libbpf-tools do: nothing goes through an event buffer.
/// @brief write(2) calls of --target_pid, tallied in maps
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "maptally.h"

const volatile pid_t target_pid = 0;

/* state between sys_enter and sys_exit, deleted once used: not a result */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

/* per-key counter like syscount -P */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct data_t);
} data SEC(".maps");

/* write sizes: keys 1, 11, 15, 14157 must sort as numbers */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
} sizes SEC(".maps");

/* a log2 histogram of the bytes asked, per process (runqlat -P) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

/* enters and exits, counted per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} calls SEC(".maps");

/* the writes per file descriptor, a global array of counters */
u64 fd_writes[MAX_FDS];
/* a linear histogram of the bytes written, one slot per byte count up to 31 */
u32 bytes_linear_hist[32];

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

static __always_inline void count_call(u32 which)
{
	u64 *n = bpf_map_lookup_elem(&calls, &which);

	if (n)
		*n += 1;
}

SEC("tracepoint/syscalls/sys_enter_write")
int write_enter(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = id, pid = id >> 32;
	u64 fd = ctx->args[0], len = ctx->args[2];
	static const struct hist zero_hist;
	struct hist_key hkey = {};
	struct hist *h;
	u64 one = 1, *n;

	if (pid != target_pid)
		return 0;
	bpf_map_update_elem(&start, &tid, &len, BPF_ANY);
	count_call(0);
	if (fd < MAX_FDS)
		__sync_fetch_and_add(&fd_writes[fd], 1);
	if (len < 32)
		__sync_fetch_and_add(&bytes_linear_hist[len], 1);
	n = bpf_map_lookup_elem(&sizes, &len);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&sizes, &len, &one, BPF_NOEXIST);
	hkey.pid = pid;
	bpf_get_current_comm(&hkey.comm, sizeof(hkey.comm));
	h = bpf_map_lookup_elem(&hists, &hkey);
	if (!h) {
		bpf_map_update_elem(&hists, &hkey, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &hkey);
		if (!h)
			return 0;
	}
	__sync_fetch_and_add(&h->slots[log2_slot(len)], 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int write_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = id, pid = id >> 32;
	static const struct data_t zero;
	struct data_t *d;
	u64 *len;

	if (pid != target_pid)
		return 0;
	count_call(1);
	len = bpf_map_lookup_elem(&start, &tid);
	if (!len)
		return 0;
	d = bpf_map_lookup_elem(&data, &pid);
	if (!d) {
		bpf_map_update_elem(&data, &pid, &zero, BPF_NOEXIST);
		d = bpf_map_lookup_elem(&data, &pid);
	}
	if (d) {
		d->count++;
		if (ctx->ret > 0)
			d->bytes += ctx->ret;
		bpf_get_current_comm(&d->comm, sizeof(d->comm));
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
