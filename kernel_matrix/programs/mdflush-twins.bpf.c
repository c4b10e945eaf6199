// SPDX-License-Identifier: MIT
/* kernel_matrix: libbpf-tools' mdflush as it is written there, with twins: fentry and kprobe on
 * md_flush_request, a function of a module. vmlinux BTF cannot say whether fentry attaches there, so the
 * loader tries it; a kernel without module BTF (before 5.11) refuses it at load time and the kprobe twin
 * must load instead, not fail the run. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "mdflush-twins.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline int report(int via)
{
    struct flush_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->via = via;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("fentry/md_flush_request")
int BPF_PROG(flush_fentry, void *mddev, void *bio)
{
    return report(0);
}

SEC("kprobe/md_flush_request")
int BPF_KPROBE(flush_kprobe, void *mddev, void *bio)
{
    return report(1);
}
