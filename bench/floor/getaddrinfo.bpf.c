// SPDX-License-Identifier: GPL-2.0
/* The kernel floor of these hooks: programs that do nothing (bench/floor/README.md). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

SEC("uprobe/libc.so.6:getaddrinfo")
int enter_getaddrinfo(void *ctx) { return 0; }

SEC("uretprobe/libc.so.6:getaddrinfo")
int exit_getaddrinfo(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
