// SPDX-License-Identifier: GPL-2.0
// Test program: copies every global into the event it sends through a ring
// buffer, on each openat(2) by the process given with --pid.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "allglobals.h"

/// process to watch
/// @cmdarg {"short": "p", "long": "pid", "help": "only report opens by this process"}
const volatile pid_t target_pid = 0;
/// an unsigned byte
const volatile u8 g_u8 = 8;
/// a default from the comment, not from the initializer
/// @cmdarg {"default": 1234}
const volatile u16 g_u16 = 16;
const volatile u32 g_u32 = 32;
const volatile u64 g_u64 = 64;
const volatile s8 g_s8 = -8;
const volatile s16 g_s16 = -16;
const volatile s32 g_s32 = -32;
const volatile s64 g_s64 = -64;
/// a switch
const volatile bool g_bool = false;
const volatile float g_f32 = 1.5;
const volatile double g_f64 = 2.25;
const volatile enum color g_color = COLOR_GREEN;
/// a name to echo
/// @cmdarg {"long": "name"}
const volatile char g_name[16] = "initial";
u32 g_data = 7;
u64 g_bss;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int copy_globals(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = target_pid;
	e->u8v = g_u8;
	e->u16v = g_u16;
	e->u32v = g_u32;
	e->u64v = g_u64;
	e->s8v = g_s8;
	e->s16v = g_s16;
	e->s32v = g_s32;
	e->s64v = g_s64;
	e->flag = g_bool;
	e->f32 = g_f32;
	e->f64 = g_f64;
	e->color = g_color;
	for (int i = 0; i < sizeof(e->name); i++)
		e->name[i] = g_name[i];
	e->data_word = g_data;
	e->bss_word = g_bss;
	/* 128-bit members, computed from 64-bit globals: s128 = s64 * 2^64 + u32 */
	e->s128 = (__int128)g_s64 * ((__int128)1 << 64) + g_u32;
	e->u128 = ((unsigned __int128)g_u64 << 64) | g_u32;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/// Copies every global into an event, for each openat by one process.
/// @version 1.2.3
char LICENSE[] SEC("license") = "GPL";
