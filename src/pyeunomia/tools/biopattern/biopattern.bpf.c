// SPDX-License-Identifier: GPL-2.0
/// Show block device I/O pattern: random or sequential, per disk.
///
/// block_rq_complete: a request is sequential when it starts
/// at the sector where the disk's previous completed request ended, else
/// random (the first one a disk completes under the tool too: nothing before
/// it to continue). The fields read (dev, sector, nr_sector) lead the record
/// at the same offsets on every kernel, 5.10 to 6.18, so no CO-RE is needed.
/// Counters live in a hash map keyed by disk and are cleared every interval.
/// Under --container, --pod or --namespace, block_bio_queue (in the
/// submitter's context) also notes the chosen containers' bios by sector,
/// and only their requests are counted: completion runs in an interrupt.
/// @positional ["interval", "count"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "biopattern.bpf.h"
#include "../include/container_filter.bpf.h"

/// Trace this disk only: a name (sda), MAJ:MIN, or the kernel's dev_t MAJOR << 20 | MINOR (0: all)
/// @cmdarg {"short": "d", "long": "disk", "metavar": "DISK", "convert": "disk"}
const volatile __u32 targ_dev = 0;

/// @table {"key": {"header": "DISK", "decoder": "dev"}, "columns": {"random": {"header": "RND"}, "sequential": {"header": "SEQ"}, "count": {"header": "COUNT"}, "bytes": {"header": "BYTES", "decoder": "bytes"}}, "sort": "count", "clear": true}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

/* The bios the container filter let in, by first sector, until their
 * request completes (--container, --pod, --namespace only): completion runs
 * in interrupt context, so the submitter is known from block_bio_queue
 * alone. LRU: bios of bio-based devices never become requests here. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u8);
} allowed_bios SEC(".maps");

/* What block_bio_queue's record starts with, the same on every kernel; its
 * dev is the partition's on 6.x, the sector absolute: the sector is the key. */
struct bio_queue_record {
	__u64 common;
	__u32 dev;
	__u64 sector;
};

/* What block_rq_complete's record starts with, the same on every kernel. */
struct rq_complete_record {
	__u64 common;
	__u32 dev;
	__u64 sector;
	__u32 nr_sector;
	int error;
};

/* Loaded only under a container filter: otherwise every bio would pay
 * for a hook that returns at once. */
/// @when filter_cgroup_map
SEC("tracepoint/block/block_bio_queue")
int block_bio_queue(struct bio_queue_record *ctx)
{
	__u64 sector = ctx->sector;
	__u8 one = 1;

	if (!filter_cgroup_map)
		return 0;
	if (container_allowed(bpf_get_current_cgroup_id()))
		bpf_map_update_elem(&allowed_bios, &sector, &one, BPF_ANY);
	else /* an earlier allowed bio at this sector, merged away, must not vouch for this one */
		bpf_map_delete_elem(&allowed_bios, &sector);
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int block_rq_complete(struct rq_complete_record *ctx)
{
	__u32 dev = ctx->dev;
	__u64 sector = ctx->sector;
	__u32 nr_sector = ctx->nr_sector;
	struct counter *c, zero = {};

	if (targ_dev && dev != targ_dev)
		return 0;
	if (!nr_sector)
		return 0; /* a flush or other request without data: no place on the disk */
	if (filter_cgroup_map) {
		if (!bpf_map_lookup_elem(&allowed_bios, &sector))
			return 0;
		bpf_map_delete_elem(&allowed_bios, &sector);
	}
	c = bpf_map_lookup_elem(&counters, &dev);
	if (!c) {
		bpf_map_update_elem(&counters, &dev, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counters, &dev);
		if (!c)
			return 0;
	}
	if (c->count && c->last_sector == sector)
		__sync_fetch_and_add(&c->sequential, 1);
	else
		__sync_fetch_and_add(&c->random, 1);
	__sync_fetch_and_add(&c->count, 1);
	__sync_fetch_and_add(&c->bytes, (__u64)nr_sector << 9);
	c->last_sector = sector + nr_sector;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
