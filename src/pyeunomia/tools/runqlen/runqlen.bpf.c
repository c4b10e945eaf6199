// SPDX-License-Identifier: GPL-2.0
/// Summarize scheduler run queue length as a histogram, sampled on every CPU.
///
/// A perf_event program on the software cpu-clock event of every CPU (the
/// runner opens it at -F HZ, default 49; libbpf-tools samples at 99) reads
/// the CPU's own run queue, reached from the running task (se.cfs_rq->rq,
/// CO-RE), and counts rq->nr_running less the running task: the tasks
/// waiting, of every scheduling class and task group. Not the per-CPU
/// `runqueues` ksym: the kernel finds it only with CONFIG_KALLSYMS_ALL
/// (this 6.18 has not); not the task's cfs_rq->nr_running, as libbpf-tools:
/// that counts the task's own group only, and became nr_queued in 6.14.
/// An idle CPU counts 0.
/// @positional ["interval", "count"]
/// @runner {"frequency": "f"}
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "runqlen.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/// Print a histogram per CPU
/// @cmdarg {"short": "C", "long": "cpus"}
const volatile bool targ_per_cpu = false;

/// Report run queue occupancy: the share of samples that found a task waiting (instead of the histograms)
/// @cmdarg {"short": "O", "long": "runqocc"}
const volatile bool targ_runqocc = false;

/* -O: samples and those that found a task waiting, by CPU with -C, else all
 * under key 0; added atomically (every CPU adds to key 0) */
/// @table {"key": {"header": "CPU", "when": "targ_per_cpu"}, "columns": {"samples": {"header": "SAMPLES"}, "queued": {"header": "RUNQOCC", "decoder": {"name": "percent", "of": "samples"}}}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CPU_NR);
	__type(key, u32);
	__type(value, struct occupancy);
} occupancy SEC(".maps");

/// @histogram {"unit": "runqlen", "linear": true}
struct lhist hist = {};
/// @histogram {"unit": "runqlen", "linear": true, "key": {"header": "cpu"}}
struct lhist cpu_hists[MAX_CPU_NR] = {};

SEC("perf_event")
int do_sample(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	u32 cpu = bpf_get_smp_processor_id();
	u64 len = BPF_CORE_READ(task, se.cfs_rq, rq, nr_running);
	struct lhist *h = &hist;

	/* the running task is not waiting (the idle task is not counted in nr_running) */
	if (len && (u32)bpf_get_current_pid_tgid())
		len--;
	if (targ_runqocc) {
		u32 key = targ_per_cpu ? cpu : 0;
		struct occupancy zero = {}, *o = bpf_map_lookup_elem(&occupancy, &key);

		if (!o) {
			bpf_map_update_elem(&occupancy, &key, &zero, BPF_NOEXIST);
			o = bpf_map_lookup_elem(&occupancy, &key);
			if (!o)
				return 0;
		}
		__sync_fetch_and_add(&o->samples, 1);
		if (len)
			__sync_fetch_and_add(&o->queued, 1);
		return 0;
	}
	if (len >= MAX_SLOTS)
		len = MAX_SLOTS - 1;
	if (targ_per_cpu) {
		if (cpu >= MAX_CPU_NR)
			return 0;
		h = &cpu_hists[cpu];
	}
	__sync_fetch_and_add(&h->slots[len], 1);
	return 0;
}
