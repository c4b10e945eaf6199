// SPDX-License-Identifier: GPL-2.0
/// Trace accepted TCP connections: the acceptor's pid and comm, the peer, and the local address and port.
///
/// Hooks: the syscalls:sys_exit_accept4 and sys_exit_accept tracepoints. The
/// handshake completes in softirq, where no acceptor is known; the exit of
/// accept runs in the acceptor, and the new socket is found exactly from the
/// returned fd through the task's fd table (CO-RE), with both ends read from
/// the sock. Only TCP over IPv4 and IPv6 is reported.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tcpaccept.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define MAX_PORTS 16

/// Process ID to trace (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Comma-separated list of local ports to trace (up to 16)
/// @cmdarg {"short": "P", "long": "port", "metavar": "PORTS"}
const volatile __u16 targ_ports[MAX_PORTS] = {};
/// Trace IPv4 only
/// @cmdarg {"short": "4", "long": "ipv4"}
const volatile bool targ_ipv4 = false;
/// Trace IPv6 only
/// @cmdarg {"short": "6", "long": "ipv6"}
const volatile bool targ_ipv6 = false;
/// Trace only processes in this cgroup (a cgroup v2 directory)
/// @cmdarg {"long": "cgroup", "metavar": "PATH", "convert": "cgroup"}
const volatile __u64 targ_cgroup = 0;

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

/* The socket behind one of the current task's file descriptors: the fd
 * table is read through CO-RE, as the kernel lays it out. NULL if the fd is
 * out of range or closed already. Call it only for an fd known to be a
 * socket (what accept returned, or one bind(2) did not call ENOTSOCK). */
static __always_inline struct sock *fd_sock(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;
	struct socket *sock;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_core_read(&file, sizeof(file), &fds[fd]);
	if (!file)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

static __always_inline int accepted(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32;
	__u64 cgid;
	struct event *e;
	struct sock *sk;
	__u16 family, lport;

	if (ret < 0 || (targ_pid && pid != targ_pid))
		return 0;
	cgid = bpf_get_current_cgroup_id(); /* accept runs in the acceptor */
	if ((targ_cgroup && cgid != targ_cgroup) || !container_allowed(cgid))
		return 0;
	sk = fd_sock(ret);
	if (!sk)
		return 0;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ_BITFIELD_PROBED(sk, sk_type) != SOCK_STREAM)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if ((targ_ipv4 && family != AF_INET) || (targ_ipv6 && family != AF_INET6))
		return 0;
	lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!port_in(lport, targ_ports))
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	e->ts_us = bpf_ktime_get_ns() / 1000;
	e->pid = pid;
	e->fd = ret;
	e->cgroup_id = cgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->af = family;
	e->sport = lport;
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	read_addrs(sk, family, e->saddr, e->daddr);
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
