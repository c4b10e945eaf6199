/* SPDX-License-Identifier: GPL-2.0 */
/* When a catalogue tool's events wake their reader.
 *
 * bpf_ringbuf_submit(e, 0) wakes the reader whenever it has caught up, and a
 * wakeup is an irq_work: on this project's VM that is ~8.5 us of the traced
 * task's time per event (exitsnoop, bpf_stats: 9,642 ns per exit with flags
 * 0, 1,161 ns with BPF_RB_NO_WAKEUP), more than everything else the program
 * does. Tools whose events are rare and slow (exec, exit, fsync, connect) paid
 * it on nearly every event. Here the reader is woken at most once per
 * wakeup_interval_ns while events arrive, or as soon as a quarter of the ring
 * waits; in between, events go in without a wakeup. The runner sees the
 * wakeup_interval_ns global and looks again that soon after each read
 * (runner/program.py, _linger_ms), so an event waits at most about one
 * interval: 10 ms, not noticeable on a terminal. While events flow, the reader
 * promises to look every interval by itself (reader_polls_until_ns below), and
 * then only a quarter-full ring wakes it: steady events cost no wakeup at all.
 *
 * Included by a tool's .bpf.c after vmlinux.h and bpf_helpers.h;
 * scripts/rebuild_tools.py hashes it into each including tool's build.json. */
#ifndef PYEUNOMIA_WAKEUP_BPF_H
#define PYEUNOMIA_WAKEUP_BPF_H

/// Wake the reader at least this often while events arrive, in ns (0: on every event)
const volatile __u64 wakeup_interval_ns = 10 * 1000 * 1000;
/* When the reader was last woken. Static, so no option; two CPUs racing
 * here cost one extra wakeup, never a lost one. */
static __u64 last_wakeup_ns;
/* Until when (CLOCK_BOOTTIME ns) the reader has promised to look at the ring
 * every wakeup_interval_ns on its own: it writes this through the mmapped
 * .bss while events flow (runner/promise.py), and a wakeup before then would
 * be wasted. Slow events pay most for wakeups: execsnoop's exit spent 72% of
 * its samples in the IPI's MSR write (perf, 4,000 execs). A global, not static:
 * libbpf maps .bss into memory only when it holds one; the runner owns it, so
 * it is no option and never printed (format/options.py, WRITTEN_WHILE_RUNNING). */
__u64 reader_polls_until_ns;
/* The flags for bpf_ringbuf_submit/output of one event into `ring`. */
static __always_inline __u64 wakeup_flags(void *ring)
{
	__u64 now = bpf_ktime_get_boot_ns();
	if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= bpf_ringbuf_query(ring, BPF_RB_RING_SIZE) / 4 ||
	    !wakeup_interval_ns ||
	    (now >= reader_polls_until_ns && now - last_wakeup_ns >= wakeup_interval_ns)) {
		last_wakeup_ns = now;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}
#endif
