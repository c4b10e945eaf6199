// SPDX-License-Identifier: MIT
/// Current libbpf style, as libbpf-tools writes it today: a tp_btf program
/// that calls kfuncs declared by vmlinux.h (bpftool 7.5+ emits their
/// prototypes), guarded by bpf_ksym_exists() (libbpf headers 1.2+) so the
/// same object loads on kernels without them (bpf_task_from_pid came in
/// 6.2), and __ksym symbols: weak ones no kernel has, and a typeless one.
/// Needs make toolchain's headers and bpftool: Debian 12's libbpf-dev 1.1
/// and bpftool 7.1 cannot compile it.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "kfuncs.h"

/* No kernel has these: bpf_ksym_exists() must say so, and the object must still load. */
extern void pyeunomia_no_such_kfunc(void) __ksym __weak;
extern const int pyeunomia_no_such_var __ksym __weak;
/* A typeless ksym every kernel has: its address, from /proc/kallsyms (a typed
 * variable would need CONFIG_KALLSYMS_ALL, which this project's host lacks). */
extern const void do_exit __ksym;

/// Only execs whose parent is this process (0: all)
const volatile int parent_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *found;
	struct event *e;

	if (parent_pid && BPF_CORE_READ(p, real_parent, tgid) != parent_pid)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = BPF_CORE_READ(p, tgid);
	e->kfunc_tgid = -1;
	e->has_task_from_pid = bpf_ksym_exists(bpf_task_from_pid);
	e->has_missing_kfunc = bpf_ksym_exists(pyeunomia_no_such_kfunc);
	e->has_missing_var = bpf_ksym_exists(&pyeunomia_no_such_var);
	e->pad = 0;
	if (bpf_ksym_exists(bpf_task_from_pid)) {
		found = bpf_task_from_pid(old_pid);
		if (found) {
			e->kfunc_tgid = found->tgid;
			bpf_task_release(found);
		}
	}
	e->do_exit_addr = (unsigned long long)&do_exit;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
