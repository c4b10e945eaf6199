// SPDX-License-Identifier: GPL-2.0
/// Trace OOM kills: the process that triggered each one and its victim.
///
/// Hooks the oom:mark_victim tracepoint, which every kernel fires when the
/// OOM killer has chosen its victim, from inside the allocation that ran out
/// of memory: the current task there is the process that triggered it
/// (libbpf-tools reads the same from a kprobe on oom_kill_process, which this
/// machine does not have). The record holds only the victim's pid before 6.8;
/// 6.8 added its comm, sizes and uid. Read through CO-RE on the kernel's own
/// trace_event_raw_mark_victim, so one program loads everywhere and fills
/// what the kernel has (has_details says which); where it lacks the victim's
/// name and the victim is the triggering process, that name is known anyway.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "oomkill.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* Events the ring had no room for, reported by the reader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* The record as 6.8+ lays it out; CO-RE finds each field where this kernel
 * put it, and bpf_core_field_exists tells which ones it has. */
struct trace_event_raw_mark_victim___x {
	int pid;
	__u32 __data_loc_comm;
	unsigned long total_vm; /* KiB, as the kernel records it */
	unsigned long anon_rss;
	uid_t uid;
} __attribute__((preserve_access_index));

SEC("tracepoint/oom/mark_victim")
int mark_victim(struct trace_event_raw_mark_victim___x *ctx)
{
	/* The triggering task's cgroup, not the victim's: the record names the
	 * victim by pid only before 6.8, and 5.10 has no helper to find a task
	 * by pid. A memory cgroup's OOM picks its victim inside that cgroup (the
	 * same container); a machine-wide one may pick another container's. */
	__u64 cgid = bpf_get_current_cgroup_id();

	if (!container_allowed(cgid))
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_boot_ns();
	e->tpid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->tcomm, sizeof(e->tcomm));
	e->kpid = BPF_CORE_READ(ctx, pid);
	e->cgroup_id = cgid;
	e->uid = (__u32)-1;
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		__u32 loc = BPF_CORE_READ(ctx, __data_loc_comm);

		bpf_probe_read_kernel_str(e->kcomm, sizeof(e->kcomm), (void *)ctx + (loc & 0xffff));
		e->total_vm_kb = BPF_CORE_READ(ctx, total_vm);
		e->anon_rss_kb = BPF_CORE_READ(ctx, anon_rss);
		e->uid = BPF_CORE_READ(ctx, uid);
		e->has_details = 1;
	} else if (e->kpid == e->tpid) {
		__builtin_memcpy(e->kcomm, e->tcomm, sizeof(e->kcomm));
	}
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
