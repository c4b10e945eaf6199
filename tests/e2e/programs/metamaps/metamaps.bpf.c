// SPDX-License-Identifier: GPL-2.0
/// Tally one process's write(2) calls in maps: size histograms per fd and
/// tables of fds and errors. A test program for @histogram, @table and
/// @positional (tests/e2e/test_tool_meta_maps.py).
/// @positional ["interval", "count"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "metamaps.h"

/// Trace only this process id
/// @cmdarg {"short": "p", "long": "pid"}
const volatile __u32 targ_pid = 0;

/// Sizes in KiB
/// @cmdarg {"short": "K", "long": "kib"}
const volatile bool targ_kib = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

/// @histogram {"unit": "bytes", "unit_option": {"targ_kib": "kibytes"}, "key": {"members": {"fd": {"header": "fd"}, "comm": {}}}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct hist_key);
	__type(value, struct hist);
} sizes SEC(".maps");

/// @histogram {"linear": true, "unit": "fd", "key": {"header": "pid"}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct fdcount);
} fds SEC(".maps");

/// @table {"key": {"header": "FD"}, "sort": "count", "top": 2, "columns": {"count": {"header": "WRITES"}, "bytes": {"header": "BYTES"}}, "clear": true}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct fd_stat);
} perfd SEC(".maps");

/// @table {"key": {"header": "ERROR", "decoder": "errno"}, "sort": "value"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} errors SEC(".maps");

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	for (int i = 0; i < 64; i++) {
		if (v <= 1)
			break;
		v >>= 1;
		slot++;
	}
	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

SEC("tracepoint/syscalls/sys_enter_write")
int write_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id, pid = id >> 32;
	__u64 fd = ctx->args[0];

	if (pid != targ_pid)
		return 0;
	bpf_map_update_elem(&start, &tid, &fd, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int write_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id, pid = id >> 32;
	static const struct hist zero_hist;
	static const struct fdcount zero_fds;
	static const struct fd_stat zero_stat;
	struct hist_key hkey = {};
	struct fdcount *fc;
	struct fd_stat *st;
	struct hist *h;
	__u64 *fdp, fd, size, one = 1, *n;
	__u32 err;

	fdp = bpf_map_lookup_elem(&start, &tid);
	if (!fdp)
		return 0;
	fd = *fdp;
	bpf_map_delete_elem(&start, &tid);
	if (ctx->ret < 0) {
		err = -ctx->ret;
		n = bpf_map_lookup_elem(&errors, &err);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			bpf_map_update_elem(&errors, &err, &one, BPF_NOEXIST);
		return 0;
	}
	size = ctx->ret;
	if (targ_kib)
		size >>= 10;
	hkey.fd = fd;
	bpf_get_current_comm(&hkey.comm, sizeof(hkey.comm));
	h = bpf_map_lookup_elem(&sizes, &hkey);
	if (!h) {
		bpf_map_update_elem(&sizes, &hkey, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&sizes, &hkey);
		if (!h)
			return 0;
	}
	__sync_fetch_and_add(&h->slots[log2_slot(size)], 1);
	fc = bpf_map_lookup_elem(&fds, &pid);
	if (!fc) {
		bpf_map_update_elem(&fds, &pid, &zero_fds, BPF_NOEXIST);
		fc = bpf_map_lookup_elem(&fds, &pid);
		if (!fc)
			return 0;
	}
	if (fd < MAX_FDS)
		__sync_fetch_and_add(&fc->counts[fd], 1);
	tid = fd;
	st = bpf_map_lookup_elem(&perfd, &tid);
	if (!st) {
		bpf_map_update_elem(&perfd, &tid, &zero_stat, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&perfd, &tid);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->count, 1);
	__sync_fetch_and_add(&st->bytes, ctx->ret);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
