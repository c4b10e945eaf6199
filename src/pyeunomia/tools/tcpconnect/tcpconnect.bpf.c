// SPDX-License-Identifier: GPL-2.0
/// Trace active TCP connections (connect): who, from which address, to which address and port.
///
/// One hook: the sock:inet_sock_set_state tracepoint (4.16+) at CLOSE ->
/// SYN_SENT. tcp_v4_connect and tcp_v6_connect make that change inside the
/// connect() system call, after choosing the source address, so the current
/// task is the connecting one and no syscall enter/exit pair or map is needed.
/// In count mode (-c) connections are counted per (source, destination, port)
/// in the kernel and printed at exit.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tcpconnect.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MAX_PORTS 16

/// Process PID to trace (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Process UID to trace (-1: all)
/// @cmdarg {"short": "u", "long": "uid", "metavar": "UID", "convert": "uid"}
const volatile __u32 targ_uid = (__u32)-1;
/// Comma-separated list of destination ports to trace (up to 16)
/// @cmdarg {"short": "P", "long": "port", "metavar": "PORTS"}
const volatile __u16 targ_ports[MAX_PORTS] = {};
/// Trace only processes in this cgroup (a cgroup v2 directory)
/// @cmdarg {"long": "cgroup", "metavar": "PATH", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;
/// Count connects per src ip and dst ip/port (printed at exit)
/// @cmdarg {"short": "c", "long": "count"}
const volatile bool targ_count = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Events the ring had no room for, per CPU: counted, never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
}

/// @table {"key": {"members": {"saddr": {"header": "SADDR", "decoder": {"name": "inet", "family": "af"}}, "daddr": {"header": "DADDR", "decoder": {"name": "inet", "family": "af"}}, "dport": {"header": "DPORT", "decoder": "port"}}}}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct conn_key);
	__type(value, __u64);
} counts SEC(".maps");

/* Whether `port` is in a list the command line gave (-P 80,443 fills its
 * first elements, the rest stay zero); an empty list takes every port, and
 * the list ends at its first zero. */
static __always_inline bool port_in(__u16 port, const volatile __u16 *list)
{
	if (!list[0])
		return true;
	for (int i = 0; i < MAX_PORTS; i++) {
		if (!list[i])
			break;
		if (list[i] == port)
			return true;
	}
	return false;
}

/* The addresses, from the socket: the tracepoint record's arrays sit at
 * offsets CO-RE relocates, and the verifier refuses a ctx pointer moved by a
 * register. IPv4 goes in the first 4 bytes, the rest zero. */
static __always_inline void read_addrs(struct sock *sk, __u16 family, unsigned char *saddr, unsigned char *daddr)
{
	if (family == AF_INET) {
		__builtin_memset(saddr, 0, 16);
		__builtin_memset(daddr, 0, 16);
		BPF_CORE_READ_INTO((__u32 *)saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)daddr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline void count(struct sock *sk, __u16 family, __u16 dport)
{
	struct conn_key key = {.af = family, .dport = dport};
	__u64 one = 1, *n;

	read_addrs(sk, family, key.saddr, key.daddr);
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
}

SEC("tracepoint/sock/inet_sock_set_state")
int handle_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 pid_tgid, uid_gid, cgid;
	__u16 family, dport;
	struct event *e;
	__u32 pid;

	if (ctx->newstate != TCP_SYN_SENT || ctx->oldstate != TCP_CLOSE || ctx->protocol != IPPROTO_TCP)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	pid = pid_tgid >> 32;
	if (targ_pid && pid != targ_pid)
		return 0;
	uid_gid = bpf_get_current_uid_gid();
	if (targ_uid != (__u32)-1 && (__u32)uid_gid != targ_uid)
		return 0;
	cgid = bpf_get_current_cgroup_id();
	if (targ_cgroup && cgid != targ_cgroup)
		return 0;
	if (!container_allowed(cgid))
		return 0;
	family = ctx->family;
	dport = ctx->dport;
	if (!port_in(dport, targ_ports))
		return 0;
	if (targ_count) {
		count((struct sock *)ctx->skaddr, family, dport);
		return 0;
	}

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	e->ts_us = bpf_ktime_get_ns() / 1000;
	e->pid = pid;
	e->uid = (__u32)uid_gid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->af = family;
	e->dport = dport;
	e->pad = 0;
	e->cgroup_id = cgid;
	read_addrs((struct sock *)ctx->skaddr, family, e->saddr, e->daddr);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
