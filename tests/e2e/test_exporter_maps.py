"""In-kernel aggregation: metrics read from BPF hash maps at scrape time.
opensnoop's opens map counted per (comm, result), and a log2 histogram map
from a small program of our own, both checked exactly."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from ..conftest import require
from ..exporter.live import Exporter, Opener
from .helpers import ROOT, compile_bpf, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

KERNEL_CONFIG = (ROOT / "examples" / "opensnoop-kernel.yaml").read_text()
OPENS = "eunomia_opens_total"


def test_opens_map_counts_per_comm_and_result_exactly():
    tmp = temp_dir()
    present = tmp / "present"
    present.write_text("x")
    child = Opener(tmp, "k")  # its start-up opens are counted too: compare before and after
    with Exporter(tmp, KERNEL_CONFIG) as exp:
        ok_before = exp.value(OPENS, comm=child.name, result="ok") or 0
        enoent_before = exp.value(OPENS, comm=child.name, result="ENOENT") or 0
        child.do("open", present, 5)
        child.do("open", tmp / "absent", 3)
        # the kernel counted them before the syscalls returned: no waiting
        assert exp.value(OPENS, comm=child.name, result="ok") == ok_before + 5
        assert exp.value(OPENS, comm=child.name, result="ENOENT") == enoent_before + 3
        assert exp.value("eunomia_exporter_events_received_total", id="0", program="opensnoop") == 0
        assert exp.value("eunomia_exporter_series", metric="eunomia_opens") >= 2
        runs = exp.samples("eunomia_exporter_bpf_run_count_total")
        assert sum(runs.values()) >= 8
    child.close()


HIST_PROGRAM = textwrap.dedent("""
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    #define SLOTS 16

    struct key { char comm[16]; };
    struct hist { unsigned long long slots[SLOTS]; };

    struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 64);
        __type(key, struct key);
        __type(value, struct hist);
    } modes SEC(".maps");

    /* the raw sys_enter tracepoint record */
    struct sys_enter { unsigned long long common; long id; unsigned long args[6]; };

    const volatile int targ_pid = 0;

    static __always_inline unsigned int log2l(unsigned long long v)
    {
        unsigned int r = 0;
        for (int i = 0; i < 63 && v > 1; i++) {
            v >>= 1;
            r++;
        }
        return r;
    }

    SEC("tracepoint/syscalls/sys_enter_openat")
    int on_openat(struct sys_enter *ctx)
    {
        struct key k = {};
        struct hist zero = {}, *h;

        if ((bpf_get_current_pid_tgid() >> 32) != targ_pid)
            return 0;
        bpf_get_current_comm(k.comm, sizeof(k.comm));
        h = bpf_map_lookup_elem(&modes, &k);
        if (!h) {
            bpf_map_update_elem(&modes, &k, &zero, BPF_NOEXIST);
            h = bpf_map_lookup_elem(&modes, &k);
            if (!h)
                return 0;
        }
        unsigned int slot = log2l(ctx->args[3]);
        if (slot >= SLOTS)
            slot = SLOTS - 1;
        __sync_fetch_and_add(&h->slots[slot], 1);
        return 0;
    }

    char LICENSE[] SEC("license") = "GPL";
""")


def test_a_log2_slot_map_becomes_a_histogram():
    require(shutil.which("clang") is not None, "clang is not installed (make test installs it)")
    tmp = temp_dir()
    obj = compile_bpf(HIST_PROGRAM, tmp, "modes")
    child = Opener(tmp, "m")
    config = f"""programs:
  - name: modes
    compiled_ebpf_filename: {obj}
    options: {{pid: {child.pid}}}
    metrics:
      histograms:
        - name: open_mode
          description: the mode argument of openat, in log2 buckets
          map: modes
          labels: [{{name: comm}}]
"""
    with Exporter(tmp, config) as exp:
        made = tmp / "made"
        for mode, times in ((1, 2), (5, 3), (0o644, 1), (0o100, 4)):  # slots 0, 2, 8 (420), 6 (64)
            child.do("open", made, times, mode)
        buckets = {dict(k)["le"]: v for k, v in exp.samples("open_mode_bucket").items()
                   if dict(k).get("comm") == child.name}
        # slot i holds 2^i .. 2^(i+1)-1 (slot 0 also 0): upper bounds 1, 3, 7, ..., 65535
        assert buckets["1.0"] == 2 and buckets["3.0"] == 2 and buckets["7.0"] == 5
        assert buckets["63.0"] == 5 and buckets["127.0"] == 9 and buckets["511.0"] == 10
        assert buckets["65535.0"] == 10 and buckets["+Inf"] == 10 and len(buckets) == 17
        assert exp.value("eunomia_exporter_series", metric="open_mode") == 1
    child.close()
