/* SPDX-License-Identifier: GPL-2.0 */
/* The cgroup v2 id of a socket: the cgroup of the task that created it
 * (an accepted socket inherits its listener's), for the tools whose hooks
 * run in softirq or timer context (TCP state changes, retransmits, drops),
 * where bpf_get_current_cgroup_id() names whatever task was interrupted
 * (on loopback, often the peer: the sender of the packet being received).
 *
 * sock->sk_cgrp_data changed layout in 5.15 (commit 8520e224f547, "bpf,
 * cgroups: Fix cgroup v2 fallback on v1/v2 mixed mode"): before, one u64
 * `val` held the cgroup pointer, or, with its low bit set, the v1 net_cls
 * classid and net_prio index (the kernel then counts the socket in the v2
 * root); since, a `cgroup` pointer of its own. CO-RE picks the kernel's.
 *
 * Included by a tool's .bpf.c after vmlinux.h, bpf_helpers.h and
 * bpf_core_read.h; scripts/rebuild_tools.py hashes it into build.json. */
#ifndef PYEUNOMIA_SOCK_CGROUP_BPF_H
#define PYEUNOMIA_SOCK_CGROUP_BPF_H

/* 5.10's struct sock_cgroup_data, as a flavour CO-RE matches by name. */
struct sock_cgroup_data___val {
	__u64 val;
} __attribute__((preserve_access_index));

/* The id of a full socket's cgroup (1: the v2 root; 0: none known). */
static __always_inline __u64 full_sock_cgroup_id(const struct sock *sk)
{
	struct cgroup *cg;

	if (bpf_core_field_exists(struct sock_cgroup_data, cgroup)) {
		cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	} else {
		struct sock_cgroup_data___val *d = (void *)__builtin_preserve_access_index(&sk->sk_cgrp_data);
		__u64 v = BPF_CORE_READ(d, val);

		if (v & 3) /* classid/prioidx in use: the kernel's sock_cgroup_ptr() says the root */
			return 1;
		cg = (struct cgroup *)v;
	}
	if (!cg)
		return 0;
	return BPF_CORE_READ(cg, kn, id);
}

/* The cgroup id of any socket a TCP hook may see: a request socket
 * (NEW_SYN_RECV) counts as its listener's; a TIME_WAIT socket is a small
 * inet_timewait_sock without sk_cgrp_data, and counts as none (0). */
static __always_inline __u64 sock_cgroup_id(const struct sock *sk)
{
	__u8 state;

	if (!sk)
		return 0;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state == TCP_TIME_WAIT)
		return 0;
	if (state == TCP_NEW_SYN_RECV) {
		sk = BPF_CORE_READ(sk, __sk_common.skc_listener); /* request_sock.rsk_listener */
		if (!sk)
			return 0;
	}
	return full_sock_cgroup_id(sk);
}

#endif
