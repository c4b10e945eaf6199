// SPDX-License-Identifier: GPL-2.0
/// Twins in the style of libbpf-tools: one kernel event hooked by several attach types, for kernels that differ.
/// @brief twins on unlinkat(2)'s entry (fentry, ksyscall, tracepoint) and return (fexit, kretsyscall,
/// tracepoint), and on sched_switch (tp_btf, raw_tp, tracepoint)
/// @details The loader keeps one program per event: the best attach type this kernel takes. Each event says
/// which twin reported it (via). Switches are reported only for --target_pid.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "twins.h"

char LICENSE[] SEC("license") = "GPL";

/// the process whose context switches are reported (0: none)
const volatile int target_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* used by the fentry twin only: not created when another twin loads */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} fentry_hits SEC(".maps");

#if defined(__TARGET_ARCH_arm64)
#define SYSCALL(name) "__arm64_sys_" #name
#else
#define SYSCALL(name) "__x64_sys_" #name
#endif

static __always_inline int report_unlink(int via, const char *path)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->via = via;
	e->exit = 0;
	e->ret = 0;
	bpf_probe_read_user_str(e->name, sizeof(e->name), path);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int report_return(int via, long ret)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->via = via;
	e->exit = 1;
	e->ret = ret;
	e->name[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("fentry/" SYSCALL(unlinkat))
int BPF_PROG(unlink_fentry, struct pt_regs *regs)
{
	u32 zero = 0;
	u64 *hits = bpf_map_lookup_elem(&fentry_hits, &zero);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	return report_unlink(VIA_FENTRY, (const char *)PT_REGS_PARM2_CORE(regs));
}

SEC("ksyscall/unlinkat")
int BPF_KSYSCALL(unlink_kprobe, int dfd, const char *path)
{
	return report_unlink(VIA_KPROBE, path);
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int unlink_tracepoint(struct trace_event_raw_sys_enter *ctx)
{
	return report_unlink(VIA_TRACEPOINT, (const char *)ctx->args[1]);
}

SEC("fexit/" SYSCALL(unlinkat))
int BPF_PROG(unlink_fexit, struct pt_regs *regs, long ret)
{
	return report_return(VIA_FENTRY, ret);
}

SEC("kretsyscall/unlinkat")
int BPF_KRETPROBE(unlink_kretprobe, long ret)
{
	return report_return(VIA_KPROBE, ret);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int unlink_tp_exit(struct trace_event_raw_sys_exit *ctx)
{
	return report_return(VIA_TRACEPOINT, ctx->ret);
}

static __always_inline int report_switch(int via, int pid, const char *comm)
{
	struct event *e;

	if (!target_pid || pid != target_pid)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->via = via;
	e->exit = 0;
	e->ret = 0;
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_tp_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return report_switch(VIA_TP_BTF, prev->tgid, prev->comm);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw_tp, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return report_switch(VIA_RAW_TP, BPF_CORE_READ(prev, tgid), prev->comm);
}

SEC("tracepoint/sched/sched_switch")
int switch_tracepoint(struct trace_event_raw_sched_switch *ctx)
{
	return report_switch(VIA_TRACEPOINT, ctx->prev_pid, ctx->prev_comm);
}
