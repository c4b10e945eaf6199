// SPDX-License-Identifier: MIT
/* kernel_matrix: ksyscall and kretsyscall on kill(2), with exact arguments and
 * result. libbpf finds the syscall's kernel function itself (__x64_sys_kill on
 * these kernels) and unwraps the arguments from the syscall wrapper's pt_regs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ksyscall.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

SEC("ksyscall/kill")
int BPF_KSYSCALL(kill_entry, pid_t tpid, int sig)
{
    struct kill_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->exit = 0;
    e->tpid = tpid;
    e->sig = sig;
    e->ret = 0;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("kretsyscall/kill")
int BPF_KRETPROBE(kill_exit, long ret)
{
    struct kill_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->exit = 1;
    e->tpid = 0;
    e->sig = 0;
    e->ret = ret;
    bpf_ringbuf_submit(e, 0);
    return 0;
}
