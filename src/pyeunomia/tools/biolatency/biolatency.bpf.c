// SPDX-License-Identifier: GPL-2.0
/// Summarize block device I/O latency as a histogram.
///
/// From block_rq_issue (or block_rq_insert with -Q, to include the time queued
/// in the OS) to block_rq_complete. Classic tracepoints, not tp_btf: their
/// arguments changed in 5.11 (block_rq_issue lost its request_queue) and
/// their records did not; the fields read here (dev, sector, rwbs) exist on
/// every kernel, rwbs at an offset CO-RE relocates (6.x inserted ioprio before
/// it and grew it to 10 bytes). Without the request pointer, a request is
/// known by (disk, sector) from issue to completion. With -c, the cgroup is
/// the submitter's, noted at block_bio_queue (always in its context) by the
/// bio's sector: insert and issue may run in a kworker.
/// @positional ["interval", "count"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "biolatency.bpf.h"
#include "../include/container_filter.bpf.h"

#define MAX_ENTRIES 10240

/// Trace this disk only: a name (sda), MAJ:MIN, or the kernel's dev_t MAJOR << 20 | MINOR (0: all)
/// @cmdarg {"short": "d", "long": "disk", "metavar": "DISK", "convert": "disk"}
const volatile __u32 targ_dev = 0;
/// Print a histogram per disk device
/// @cmdarg {"short": "D", "long": "disks"}
const volatile bool targ_per_disk = false;
/// Print a histogram per set of I/O flags
/// @cmdarg {"short": "F", "long": "flag"}
const volatile bool targ_per_flag = false;
/// Include OS queued time in I/O time
/// @cmdarg {"short": "Q", "long": "queued"}
const volatile bool targ_queued = false;
/// Millisecond histogram
/// @cmdarg {"short": "m", "long": "milliseconds"}
const volatile bool targ_ms = false;
/// Trace only I/O issued by processes in this cgroup
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "CG", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

struct rq_key {
	__u32 dev;
	__u32 pad;
	__u64 sector;
};

struct start {
	__u64 ts;
	char rwbs[RWBS_LEN];
};

/* Requests in flight: when each started, and its flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct rq_key);
	__type(value, struct start);
} starts SEC(".maps");

/// @histogram {"unit": "usecs", "unit_option": {"targ_ms": "msecs"}, "key": {"members": {"dev": {"header": "disk", "decoder": "dev", "when": "targ_per_disk"}, "rwbs": {"header": "flags", "when": "targ_per_flag"}}}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

/* The cgroup that submitted each bio, by its first sector, until a request
 * takes it (-c, --container, --pod, --namespace only). LRU: bios of
 * bio-based devices never become requests. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, __u64);
} submitters SEC(".maps");

/* What block_bio_queue's record starts with, the same on every kernel. Its
 * dev is the partition's on 6.x: the sector, absolute on both, is the key. */
struct bio_queue_record {
	__u64 common;
	__u32 dev;
	__u64 sector;
};

/* What block_rq_complete's record starts with, the same on every kernel:
 * rwbs and the rest moved (6.x inserted ioprio), these did not. */
struct rq_complete_record {
	__u64 common;
	__u32 dev;
	__u64 sector;
	__u32 nr_sector;
	int error;
};

static __always_inline __u32 log2l(__u64 v)
{
	__u32 r = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

static __always_inline int trace_start(struct trace_event_raw_block_rq *ctx, bool insert)
{
	struct rq_key key = {.dev = ctx->dev, .sector = ctx->sector};
	struct start s = {};

	if (targ_dev && key.dev != targ_dev)
		return 0;
	/* with -Q a request keeps its insert time; without, issue replaces it */
	if (!insert && targ_queued && bpf_map_lookup_elem(&starts, &key))
		return 0;
	if (targ_cgroup || filter_cgroup_map) {
		__u64 sector = key.sector, cgroup_id;
		__u64 *submitter = bpf_map_lookup_elem(&submitters, &sector);

		if (submitter) {
			cgroup_id = *submitter;
			bpf_map_delete_elem(&submitters, &sector);
		} else {
			cgroup_id = bpf_get_current_cgroup_id();
			if (!container_allowed(cgroup_id))
				return 0;
		}
		if (targ_cgroup && cgroup_id != targ_cgroup)
			return 0;
	}
	s.ts = bpf_ktime_get_ns();
	/* up to its NUL, the rest left zero: the histogram key must not carry stale bytes */
	bpf_probe_read_kernel_str(s.rwbs, sizeof(s.rwbs), ctx->rwbs);
	bpf_map_update_elem(&starts, &key, &s, BPF_ANY);
	return 0;
}

SEC("tracepoint/block/block_bio_queue")
int block_bio_queue(struct bio_queue_record *ctx)
{
	__u64 sector = ctx->sector, cgroup_id;

	if (!targ_cgroup && !filter_cgroup_map)
		return 0;
	cgroup_id = bpf_get_current_cgroup_id();
	/* a bio the container filter drops: forget whatever an earlier bio at its
	 * sector left (merged into another request, it was never taken), so its
	 * request cannot pass as the container's */
	if (!container_allowed(cgroup_id)) {
		bpf_map_delete_elem(&submitters, &sector);
		return 0;
	}
	bpf_map_update_elem(&submitters, &sector, &cgroup_id, BPF_ANY);
	return 0;
}

SEC("tracepoint/block/block_rq_insert")
int block_rq_insert(struct trace_event_raw_block_rq *ctx)
{
	if (!targ_queued)
		return 0;
	return trace_start(ctx, true);
}

SEC("tracepoint/block/block_rq_issue")
int block_rq_issue(struct trace_event_raw_block_rq *ctx)
{
	return trace_start(ctx, false);
}

SEC("tracepoint/block/block_rq_complete")
int block_rq_complete(struct rq_complete_record *ctx)
{
	struct rq_key key = {.dev = ctx->dev, .sector = ctx->sector};
	struct hist_key hkey = {};
	struct hist *h, zero = {};
	struct start *s;
	__u64 delta;
	__u32 slot;

	s = bpf_map_lookup_elem(&starts, &key);
	if (!s)
		return 0; /* issued before we attached, or filtered out */
	delta = bpf_ktime_get_ns() - s->ts;
	if (targ_per_disk)
		hkey.dev = key.dev;
	if (targ_per_flag)
		__builtin_memcpy(hkey.rwbs, s->rwbs, sizeof(hkey.rwbs));
	bpf_map_delete_elem(&starts, &key);
	if ((__s64)delta < 0)
		return 0;
	delta /= targ_ms ? 1000000 : 1000;
	h = bpf_map_lookup_elem(&hists, &hkey);
	if (!h) {
		bpf_map_update_elem(&hists, &hkey, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &hkey);
		if (!h)
			return 0;
	}
	slot = log2l(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
