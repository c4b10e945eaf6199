// SPDX-License-Identifier: GPL-2.0
/// Trace bind(2) of IPv4 and IPv6 sockets: who, the address and port asked for, the protocol, socket options and result.
///
/// Hooks: the syscalls:sys_enter_bind and sys_exit_bind tracepoints, paired by
/// thread id in a hash map (the sockaddr pointer and fd at entry, the result
/// at exit). The sockaddr is read from the caller's memory; the protocol,
/// bound device and options (SO_REUSEADDR, SO_REUSEPORT, IP_FREEBIND,
/// IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT) from the socket behind the fd
/// through CO-RE: 6.6 moved the last three from inet_sock bitfields to the
/// inet_flags bitmap, and the program reads whichever the kernel has.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "bindsnoop.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define ENOTSOCK 88
#define EBADF 9
#define MAX_PORTS 16

/// Process ID to trace (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;
/// Comma-separated list of ports to trace (up to 16)
/// @cmdarg {"short": "P", "long": "ports", "metavar": "PORTS"}
const volatile __u16 targ_ports[MAX_PORTS] = {};
/// Include errors on output (failed binds)
/// @cmdarg {"short": "x", "long": "failed"}
const volatile bool include_errors = false;
/// Trace process in this cgroup (a cgroup v2 directory)
/// @cmdarg {"short": "c", "long": "cgroup", "metavar": "PATH", "convert": "cgroup"}
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

/* A bind in flight, from its entry to its exit. */
struct bind_args {
	const void *uaddr;
	__u64 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* binds in flight at once: one per thread inside bind(2) */
	__type(key, __u32);
	__type(value, struct bind_args);
} args SEC(".maps");

/* inet_sock before 6.6: the options as bitfields. */
struct inet_sock___old {
	__u8 freebind: 1;
	__u8 transparent: 1;
	__u8 bind_address_no_port: 1;
} __attribute__((preserve_access_index));

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

static __always_inline __u8 sock_opts(struct sock *sk)
{
	__u8 opts = 0;

	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuse))
		opts |= OPT_REUSEADDR;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuseport))
		opts |= OPT_REUSEPORT;
	if (bpf_core_field_exists(struct inet_sock, inet_flags)) {
		/* an anonymous enum (no CO-RE for it); its values have stayed put
		 * since 6.6 made it, new flags were appended */
		unsigned long flags = BPF_CORE_READ((struct inet_sock *)sk, inet_flags);

		if (flags & (1UL << INET_FLAGS_FREEBIND))
			opts |= OPT_FREEBIND;
		if (flags & (1UL << INET_FLAGS_TRANSPARENT))
			opts |= OPT_TRANSPARENT;
		if (flags & (1UL << INET_FLAGS_BIND_ADDRESS_NO_PORT))
			opts |= OPT_BIND_ADDRESS_NO_PORT;
	} else {
		struct inet_sock___old *old = (void *)sk;

		if (BPF_CORE_READ_BITFIELD_PROBED(old, freebind))
			opts |= OPT_FREEBIND;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, transparent))
			opts |= OPT_TRANSPARENT;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port))
			opts |= OPT_BIND_ADDRESS_NO_PORT;
	}
	return opts;
}

SEC("tracepoint/syscalls/sys_enter_bind")
int enter_bind(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct bind_args a = {};
	__u64 cgid;

	if (targ_pid && (pid_tgid >> 32) != targ_pid)
		return 0;
	cgid = bpf_get_current_cgroup_id();
	if ((targ_cgroup && cgid != targ_cgroup) || !container_allowed(cgid))
		return 0; /* before the map: exit_bind finds no entry and skips too */
	a.fd = ctx->args[0];
	a.uaddr = (const void *)ctx->args[1];
	bpf_map_update_elem(&args, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bind")
int exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct bind_args *a = bpf_map_lookup_elem(&args, &tid);
	long ret = ctx->ret;
	__u16 family = 0, port = 0;
	struct event *e;
	struct sock *sk;

	if (!a)
		return 0;
	if (ret < 0 && !include_errors)
		goto out;
	if (bpf_probe_read_user(&family, sizeof(family), a->uaddr) ||
	    (family != AF_INET && family != AF_INET6))
		goto out;
	bpf_probe_read_user(&port, sizeof(port), a->uaddr + 2);
	port = bpf_ntohs(port);
	if (!port_in(port, targ_ports))
		goto out;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		goto out;
	}
	e->ts_us = bpf_ktime_get_ns() / 1000;
	e->pid = pid_tgid >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->ret = ret;
	e->fd = a->fd;
	e->cgroup_id = bpf_get_current_cgroup_id(); /* the binding task's, as at entry */
	e->af = family;
	e->port = port;
	e->pad = 0;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	if (family == AF_INET)
		bpf_probe_read_user(e->addr, 4, a->uaddr + 4);   /* sockaddr_in.sin_addr */
	else
		bpf_probe_read_user(e->addr, 16, a->uaddr + 8);  /* sockaddr_in6.sin6_addr */
	sk = (ret == -ENOTSOCK || ret == -EBADF) ? NULL : fd_sock(a->fd);
	if (sk) {
		e->proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
		e->bound_dev_if = BPF_CORE_READ(sk, __sk_common.skc_bound_dev_if);
		e->opts = sock_opts(sk);
	} else {
		e->proto = 0;
		e->bound_dev_if = 0;
		e->opts = 0;
	}
	bpf_ringbuf_submit(e, wakeup_flags(&events));
out:
	bpf_map_delete_elem(&args, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
