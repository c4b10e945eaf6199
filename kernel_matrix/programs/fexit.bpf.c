// SPDX-License-Identifier: MIT
/* kernel_matrix: fexit on do_unlinkat, reading both an argument (the name) and
 * the return value, which only fexit (not kretprobe) can do. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "fexit.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

SEC("fexit/do_unlinkat")
int BPF_PROG(unlink_exit, int dfd, struct filename *name, long ret)
{
    struct unlink_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->ret = ret;
    bpf_probe_read_kernel_str(e->name, sizeof(e->name), BPF_CORE_READ(name, name));
    bpf_ringbuf_submit(e, 0);
    return 0;
}
