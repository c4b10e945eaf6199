// SPDX-License-Identifier: GPL-2.0
/// Show latency for getaddrinfo/gethostbyname[2] calls: who resolved which host, how long it took.
///
/// A uprobe and a uretprobe on each of libc's getaddrinfo, gethostbyname and
/// gethostbyname2. The library is named `libc.so.6`, found by libbpf in the
/// library directories when the probes attach (the multiarch directory
/// included), so every process mapping that libc is traced; `-l LIBC` probes
/// another one. The entry keeps
/// the host's pointer and the time per thread; the return reads the name and
/// emits the time spent.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "gethostlatency.bpf.h"
#include "../include/wakeup.bpf.h"
#include "../include/container_filter.bpf.h"

/// Trace only this process id (0: all)
/// @cmdarg {"short": "p", "long": "pid", "metavar": "PID"}
const volatile pid_t targ_pid = 0;

/// Specify which libc.so to use (default: libc.so.6 from the library directories)
/// @cmdarg {"short": "l", "long": "libc", "metavar": "LIBC"}
/// @binary "libc.so.6"
const volatile char libc_path[256] = "";

struct lookup {
	unsigned long long start;
	const char *host;
	unsigned int call;
};

/* A lookup in flight, from its entry to its return: a slot per thread, reused
 * by its next call (start 0: none in flight). Written in place, not inserted
 * and deleted per call: that took ~300 ns of the ~2.5 us a traced call cost
 * (perf: htab update, delete and the free list). LRU, so the slots of threads
 * that are gone make room: a call's slot was touched at its entry, so it is
 * evicted (and that call not reported) only if thousands of other threads
 * start lookups while it is in flight. State, not results: never printed. */
/// @internal
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct lookup);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Events the ring had no room for: counted, never dropped silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline int entry(const char *host, unsigned int call)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;

	if (targ_pid && targ_pid != (pid_t)(id >> 32))
		return 0;
	if (!container_allowed(bpf_get_current_cgroup_id()))
		return 0;
	struct lookup *slot = bpf_map_lookup_elem(&inflight, &tid);
	if (slot) {
		slot->host = host;
		slot->call = call;
		slot->start = bpf_ktime_get_boot_ns();
	} else {
		struct lookup l = {.host = host, .call = call, .start = bpf_ktime_get_boot_ns()};

		bpf_map_update_elem(&inflight, &tid, &l, BPF_ANY);
	}
	return 0;
}

static __always_inline int leave(long long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct lookup *l = bpf_map_lookup_elem(&inflight, &tid);
	struct event *e;

	if (!l || !l->start)
		return 0; /* a return whose entry was not seen */
	struct lookup c = *l;

	l->start = 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			*n += 1;
		return 0;
	}
	e->ts = bpf_ktime_get_boot_ns();
	e->time = e->ts - c.start;
	e->pid = id >> 32;
	e->tid = tid;
	e->call = c.call;
	e->ret = ret;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_probe_read_user_str(e->host, sizeof(e->host), c.host) < 0)
		e->host[0] = 0;
	bpf_ringbuf_submit(e, wakeup_flags(&events));
	return 0;
}

SEC("uprobe/libc.so.6:getaddrinfo")
int BPF_KPROBE(getaddrinfo_entry, const char *node)
{
	return entry(node, CALL_GETADDRINFO);
}

SEC("uretprobe/libc.so.6:getaddrinfo")
int BPF_KRETPROBE(getaddrinfo_return, long ret)
{
	return leave((int)ret);
}

SEC("uprobe/libc.so.6:gethostbyname")
int BPF_KPROBE(gethostbyname_entry, const char *name)
{
	return entry(name, CALL_GETHOSTBYNAME);
}

SEC("uretprobe/libc.so.6:gethostbyname")
int BPF_KRETPROBE(gethostbyname_return, long ret)
{
	return leave(ret);
}

SEC("uprobe/libc.so.6:gethostbyname2")
int BPF_KPROBE(gethostbyname2_entry, const char *name)
{
	return entry(name, CALL_GETHOSTBYNAME2);
}

SEC("uretprobe/libc.so.6:gethostbyname2")
int BPF_KRETPROBE(gethostbyname2_return, long ret)
{
	return leave(ret);
}

char LICENSE[] SEC("license") = "GPL";
