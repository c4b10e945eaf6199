// SPDX-License-Identifier: GPL-2.0
/// Trace block device I/O: each request's process, disk, flags, sector, size and latency.
///
/// block_rq_insert (-Q only) and block_rq_issue note who queued a request and
/// when; block_rq_complete reports it. Classic tracepoints, not tp_btf: their
/// arguments changed in 5.11 (block_rq_issue lost its request_queue) and
/// their records did not; rwbs sits at an offset CO-RE relocates (6.x
/// inserted ioprio before it). Without the request pointer, a request is
/// known by (disk, sector) from issue to completion. The process is the one
/// that submitted the request's first bio (block_bio_queue, always in the
/// submitter's context, keyed by its sector): insert and issue may run in a
/// kworker when the block layer defers the dispatch (5.10 does for a 64 KiB
/// O_DIRECT write on a loop device). A request of no queued bio (a flush the
/// block layer made) goes to the task current at insert or issue.
/// @positional ["duration"]
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "biosnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define MAX_ENTRIES 10240

/// Trace this disk only: a name (sda), MAJ:MIN, or the kernel's dev_t MAJOR << 20 | MINOR (0: all)
/// @cmdarg {"short": "d", "long": "disk", "metavar": "DISK", "convert": "disk"}
const volatile __u32 targ_dev = 0;
/// Include OS queued time in I/O time
/// @cmdarg {"short": "Q", "long": "queued"}
const volatile bool targ_queued = false;
/// Trace only I/O issued by processes in this cgroup
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "CG", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

struct rq_key {
	__u32 dev;
	__u32 pad;
	__u64 sector;
};

struct start {
	__u64 insert_ts; /* 0: not seen inserted */
	__u64 issue_ts;
	__u64 cgroup_id;
	__u32 pid;
	__u32 len;
	char comm[TASK_COMM_LEN];
	char rwbs[RWBS_LEN];
};

/* Requests in flight, from insert or issue to completion. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct rq_key);
	__type(value, struct start);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Events the ring had no room for, counted per CPU: never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Who submitted each bio, by its first sector, until a request takes it.
 * LRU: bios of bio-based devices (dm, md) never become requests here. */
struct who {
	__u64 cgroup_id;
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, struct who);
} submitters SEC(".maps");

/* What block_bio_queue's record starts with, the same on every kernel. Its
 * dev is the partition's on 6.x (bi_bdev is not remapped), the disk's on
 * 5.10: the sector, absolute after the remap on both, is the key. */
struct bio_queue_record {
	__u64 common;
	__u32 dev;
	__u64 sector;
	__u32 nr_sector;
};

/* What block_rq_complete's record starts with, the same on every kernel. */
struct rq_complete_record {
	__u64 common;
	__u32 dev;
	__u64 sector;
	__u32 nr_sector;
	int error;
};

static __always_inline int trace_start(struct trace_event_raw_block_rq *ctx, bool insert)
{
	struct rq_key key = {.dev = ctx->dev, .sector = ctx->sector};
	struct start *s, fresh = {};
	__u64 now = bpf_ktime_get_ns();

	if (targ_dev && key.dev != targ_dev)
		return 0;
	s = bpf_map_lookup_elem(&starts, &key);
	if (s && !insert && s->insert_ts) {
		s->issue_ts = now; /* inserted, now issued: keep who inserted it */
		s->len = ctx->nr_sector << 9;
		return 0;
	}
	__u64 sector = key.sector;
	struct who *w = bpf_map_lookup_elem(&submitters, &sector);

	if (w) {
		fresh.cgroup_id = w->cgroup_id;
		fresh.pid = w->pid;
		__builtin_memcpy(fresh.comm, w->comm, sizeof(fresh.comm));
		bpf_map_delete_elem(&submitters, &sector);
	} else {
		fresh.cgroup_id = bpf_get_current_cgroup_id();
		if (!container_allowed(fresh.cgroup_id))
			return 0;
		fresh.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	}
	if (targ_cgroup && fresh.cgroup_id != targ_cgroup)
		return 0;
	if (insert)
		fresh.insert_ts = now;
	fresh.issue_ts = now;
	/* nr_sector, the measure every block tool here and block_rq_complete use (bytes is also set for passthrough) */
	fresh.len = ctx->nr_sector << 9;
	bpf_probe_read_kernel_str(fresh.rwbs, sizeof(fresh.rwbs), ctx->rwbs);
	bpf_map_update_elem(&starts, &key, &fresh, BPF_ANY);
	return 0;
}

SEC("tracepoint/block/block_bio_queue")
int block_bio_queue(struct bio_queue_record *ctx)
{
	__u64 sector = ctx->sector;
	struct who w = {.cgroup_id = bpf_get_current_cgroup_id()};

	/* a bio the container filter drops: forget whatever an earlier bio at its
	 * sector left (merged into another request, it was never taken), so its
	 * request cannot pass as the container's */
	if (!container_allowed(w.cgroup_id)) {
		bpf_map_delete_elem(&submitters, &sector);
		return 0;
	}
	w.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(w.comm, sizeof(w.comm));
	bpf_map_update_elem(&submitters, &sector, &w, BPF_ANY);
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
	__u64 now = bpf_ktime_get_ns();
	struct start *s;
	struct event *e;

	s = bpf_map_lookup_elem(&starts, &key);
	if (!s)
		return 0; /* issued before we attached, or filtered out */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		bpf_map_delete_elem(&starts, &key);
		return 0;
	}
	e->ts = bpf_ktime_get_boot_ns();
	__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
	__builtin_memcpy(e->rwbs, s->rwbs, sizeof(e->rwbs));
	e->pid = s->pid;
	e->dev = key.dev;
	e->sector = key.sector;
	e->len = s->len;
	e->qdelta = s->insert_ts ? s->issue_ts - s->insert_ts : 0;
	e->delta = now - s->issue_ts;
	e->cgroup_id = s->cgroup_id;
	bpf_map_delete_elem(&starts, &key);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
