// SPDX-License-Identifier: GPL-2.0
/* The kernel floor of these hooks: programs that do nothing (bench/floor/README.md). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
