// SPDX-License-Identifier: GPL-2.0
/// Trace TCP retransmits: the flow's addresses, ports and state (-c: count them per flow).
///
/// Hooks the tcp:tcp_retransmit_skb tracepoint (4.15 and later) as a raw
/// tracepoint and reads the socket it passes through CO-RE, not the classic
/// record: the record's layout grew across kernels (family in 4.16+, err in
/// 6.14+), while the socket's fields are found by name on each kernel. Its
/// first argument has been the socket on every kernel since the tracepoint
/// appeared, so one program serves 5.10, 6.1, 6.12 and later.
/// A retransmit's container is its socket's cgroup: the retransmit timer
/// fires in softirq, in whichever task it interrupted.
/// Tail loss probes (bcc's -l) are a kprobe there and are not traced.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tcpretrans.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"
#include "../include/sock_cgroup.bpf.h"

#define AF_INET 2
#define AF_INET6 10

/// Count retransmits per flow instead of printing each one
/// @cmdarg {"short": "c", "long": "count"}
const volatile bool count_flows = false;
/// Trace IPv4 only
/// @cmdarg {"short": "4", "long": "ipv4"}
const volatile bool only_ipv4 = false;
/// Trace IPv6 only
/// @cmdarg {"short": "6", "long": "ipv6"}
const volatile bool only_ipv6 = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Events the ring had no room for, reported by the reader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/// @table {"key": {"members": {"saddr": {"header": "LADDR", "decoder": {"name": "inet", "family": "af"}}, "lport": {"header": "LPORT"}, "daddr": {"header": "RADDR", "decoder": {"name": "inet", "family": "af"}}, "dport": {"header": "RPORT"}}}, "columns": {"value": {"header": "RETRANSMITS"}}, "sort": "value"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, __u64);
} flows SEC(".maps");

/* Fills af, ports and addresses from the socket; false for families not traced. */
static __always_inline bool read_flow(const struct sock *sk, __u16 *af, __u16 *lport, __u16 *dport,
				      __u8 *saddr, __u8 *daddr)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family == AF_INET) {
		if (only_ipv6)
			return false;
		BPF_CORE_READ_INTO((__u32 *)saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)daddr, sk, __sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		if (only_ipv4)
			return false;
		BPF_CORE_READ_INTO((struct in6_addr *)saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return false;
	}
	*af = family;
	*lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	*dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return true;
}

SEC("raw_tp/tcp_retransmit_skb")
int tcp_retransmit_skb(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	struct flow_key key = {};
	struct event *e;
	__u64 cgid;

	if (!sk)
		return 0;
	cgid = sock_cgroup_id(sk);
	if (!container_allowed(cgid))
		return 0;
	if (count_flows) {
		__u64 one = 1, *count;

		if (!read_flow(sk, &key.af, &key.lport, &key.dport, key.saddr, key.daddr))
			return 0;
		count = bpf_map_lookup_elem(&flows, &key);
		if (count)
			__sync_fetch_and_add(count, 1);
		else
			bpf_map_update_elem(&flows, &key, &one, BPF_ANY);
		return 0;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	if (!read_flow(sk, &e->af, &e->lport, &e->dport, e->saddr, e->daddr)) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	e->ts = bpf_ktime_get_boot_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e->cgroup_id = cgid;
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
