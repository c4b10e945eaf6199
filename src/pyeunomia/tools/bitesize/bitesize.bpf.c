// SPDX-License-Identifier: GPL-2.0
/// Summarize block device I/O size as a histogram per process name.
///
/// block_rq_issue gives the size, the request's as the driver gets it (after
/// merges); block_bio_queue, always in the submitter's context, gives the
/// process name, kept by the bio's first sector until its request is issued:
/// the issue itself may run in a kworker when the block layer defers the
/// dispatch (5.10 does for a 64 KiB O_DIRECT write on a loop device). A
/// request of no queued bio goes to the task current at issue. Classic
/// tracepoints, not tp_btf: block_rq_issue lost its request_queue argument
/// in 5.11, its record did not; the fields read lead both records at the same
/// offsets on every kernel.
/// @positional ["interval", "count"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "bitesize.bpf.h"
#include "../include/container_filter.bpf.h"

/// Trace this comm only (exact name, as /proc/PID/comm)
/// @cmdarg {"short": "c", "long": "comm", "metavar": "COMM"}
const volatile char targ_comm[TASK_COMM_LEN] = "";
/// Trace this disk only: a name (sda), MAJ:MIN, or the kernel's dev_t MAJOR << 20 | MINOR (0: all)
/// @cmdarg {"short": "d", "long": "disk", "metavar": "DISK", "convert": "disk"}
const volatile __u32 targ_dev = 0;

/// @histogram {"unit": "kbytes", "key": {"members": {"comm": {"header": "Process Name"}}}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

/* Who submitted each bio, by its first sector, until its request is issued.
 * LRU: bios of bio-based devices (dm, md) never become requests here. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, struct hist_key);
} submitters SEC(".maps");

/* What block_rq_issue's and block_bio_queue's records start with, the same
 * on every kernel. block_bio_queue's dev is the partition's on 6.x (bi_bdev
 * is not remapped): the sector, absolute on both, is the key. */
struct rq_issue_record {
	__u64 common;
	__u32 dev;
	__u64 sector;
	__u32 nr_sector;
};

static __always_inline bool comm_allowed(const char *comm)
{
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (comm[i] != targ_comm[i])
			return false;
		if (!comm[i])
			return true;
	}
	return true;
}

static __always_inline __u32 log2l(__u64 v)
{
	__u32 r = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tracepoint/block/block_bio_queue")
int block_bio_queue(struct rq_issue_record *ctx)
{
	__u64 sector = ctx->sector;
	struct hist_key who = {};

	/* a bio the container filter drops: forget whatever an earlier bio at its
	 * sector left (merged into another request, it was never taken), so its
	 * request cannot pass as the container's */
	if (filter_cgroup_map && !container_allowed(bpf_get_current_cgroup_id())) {
		bpf_map_delete_elem(&submitters, &sector);
		return 0;
	}
	bpf_get_current_comm(who.comm, sizeof(who.comm));
	bpf_map_update_elem(&submitters, &sector, &who, BPF_ANY);
	return 0;
}

SEC("tracepoint/block/block_rq_issue")
int block_rq_issue(struct rq_issue_record *ctx)
{
	struct hist_key key = {};
	struct hist *h, zero = {};
	__u32 slot;

	if (targ_dev && ctx->dev != targ_dev)
		return 0;
	__u64 sector = ctx->sector;
	struct hist_key *submitter = bpf_map_lookup_elem(&submitters, &sector);

	if (submitter) {
		key = *submitter;
		bpf_map_delete_elem(&submitters, &sector);
	} else {
		if (filter_cgroup_map && !container_allowed(bpf_get_current_cgroup_id()))
			return 0;
		bpf_get_current_comm(key.comm, sizeof(key.comm));
	}
	if (targ_comm[0] && !comm_allowed(key.comm))
		return 0;
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return 0;
	}
	/* in KiB, as libbpf-tools: slot 0 holds 0 and 1 KiB, slot 2 holds 4-7 KiB */
	slot = log2l(((__u64)ctx->nr_sector << 9) >> 10);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
