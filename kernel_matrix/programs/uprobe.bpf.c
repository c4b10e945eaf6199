// SPDX-License-Identifier: MIT
/* kernel_matrix: uprobe and uretprobe on kmx_add() of the test target that the
 * matrix puts at /kmx/bin/kmx-uprobe-target in the guest (uprobe-target.c). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "uprobe.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

static void report(unsigned int exit, int a, int b, int ret)
{
    struct add_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e)
        return;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->exit = exit;
    e->a = a;
    e->b = b;
    e->ret = ret;
    bpf_ringbuf_submit(e, 0);
}

SEC("uprobe//kmx/bin/kmx-uprobe-target:kmx_add")
int BPF_KPROBE(add_entry, int a, int b)
{
    report(0, a, b, 0);
    return 0;
}

SEC("uretprobe//kmx/bin/kmx-uprobe-target:kmx_add")
int BPF_KRETPROBE(add_exit, int ret)
{
    report(1, 0, 0, ret);
    return 0;
}
