"""make bench: run every benchmark and write BENCHMARKS.md.

Benchmarks, not tests: they assert nothing. Figures are medians of several
repetitions with (min–max); ratios are taken within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import decode
import overhead
import startup
from common import FLOOR_OPENAT, ROOT, TUTORIAL, TUTORIAL_PERF, Tracer, exporter_tracer, machine, tracers

BPFTRACE = "bpftrace opensnoop.bt"
LIBBPF_TOOLS = "libbpf-tools opensnoop (C)"
# the rows of the loss and floor tables: ours, the tutorial's program run by ecli, C, bpftrace
COMPARED = ("opensnoop (table)", TUTORIAL, TUTORIAL_PERF, LIBBPF_TOOLS, BPFTRACE)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def section_overhead(n: int, reps: int) -> tuple[str, dict[str, float]]:
    exporters = [exporter_tracer(18527, name="eunomia-exporter, userspace counter"),
                 exporter_tracer(18528, in_kernel=True, name="eunomia-exporter, in-kernel map")]
    base, traced, baselines = overhead.per_open_overhead(n, reps, {t.name: t for t in exporters})
    added = {name: s.median - baselines[name].median for name, s in traced.items()}
    bt = added.get(BPFTRACE)
    rows = [["untraced", base.text(), "–", "–"]]
    for name, s in traced.items():
        ratio = f"{added[name] / bt:.3f}" if bt else "–"
        rows.append([name, s.text(), f"{added[name]:+,.0f}", ratio])
    text = (f"{n:,} opens of /etc/hostname per repetition, {reps} repetitions each; the producer on CPU 1, "
            "the tracer on CPU 0 writing to a file on tmpfs (no writeback in the producer's time); added = the "
            f"tracer's median minus that of {reps} untraced repetitions made just before it started (the untraced "
            "row pools them all). "
            f"`{TUTORIAL}`: eunomia-bpf's tutorial opensnoop.bpf.c (a perf event array and a hash map between "
            f"enter and exit) compiled by our ecc, which ecli loads as a ring buffer (runner/perf2ring.py); "
            f"`{TUTORIAL_PERF}`: the same with the perf array kept; `{LIBBPF_TOOLS}`: Debian's libbpf-tools "
            f"package; `{FLOOR_OPENAT}`: programs that do nothing on the two tracepoints the tutorial's program "
            "uses (bench/floor/): what the kernel charges for running any program there, which no loader can "
            "take back.\n\n"
            + table(["tracer", "ns per open", "added ns", "added / bpftrace's"], rows)
            + _above_floor(added))
    return text, added


def _above_floor(added: dict[str, float]) -> str:
    """The tutorial's cost split into the kernel's floor and the rest (its
    own programs and ecli's reader), each against bpftrace's cost."""
    bt, floor, tut = added.get(BPFTRACE), added.get(FLOOR_OPENAT), added.get(TUTORIAL)
    if not bt or floor is None or tut is None:
        return ""
    return (f"\nThe tutorial's program through ecli: {tut:+,.0f} ns = {tut / bt:.3f} of bpftrace's; of it, the "
            f"kernel's floor on its two tracepoints {floor:+,.0f} ns ({floor / bt:.3f}) and its own programs with "
            f"ecli's reader {tut - floor:+,.0f} ns ({(tut - floor) / bt:.3f}; their run time alone is in section "
            "4).\n")


def section_loss(n: int) -> str:
    rows = []
    for name in COMPARED:
        tracer = tracers().get(name)
        if tracer is None:
            continue
        for producers in (1, 2):
            made, got, report = overhead.loss(n, producers, tracer)
            rows.append([name, str(producers), f"{made:,}", f"{got:,}", f"{made - got:,}",
                         f"{100 * got / made:.3f}%", report or "–"])
    return (f"Each producer opens its own file {n:,} times at full speed (one per CPU with 2); "
            "delivered = lines the tracer printed for those files.\n\n"
            + table(["tracer", "producers", "opens", "delivered", "lost", "delivered %", "tracer's loss report"],
                    rows))


def section_decode() -> str:
    rates = decode.rates(200_000)
    rows = [[mode, f"{rate:,.0f}"] for mode, rate in rates.items()]
    return ("opensnoop's reader formatting records from simulated ring memory into memory, one core, "
            "best of 5.\n\n" + table(["output", "records per second"], rows))


def section_floor(n: int, added: dict[str, float]) -> str:
    rows = []
    for name in (*COMPARED, FLOOR_OPENAT):
        tracer = tracers().get(name)
        if tracer is None:
            continue
        progs = overhead.bpf_floor(n, tracer)
        floor = sum(progs.values())
        detail = ", ".join(f"{p} {ns:,.0f}" for p, ns in sorted(progs.items()))
        meas = added.get(name)
        rows.append([name, f"{floor:,.0f}", detail, f"{meas:,.0f}" if meas is not None else "–",
                     f"{meas - floor:,.0f}" if meas is not None else "–"])
    return ("BPF programs' own run time per open (kernel.bpf_stats_enabled, run_time_ns / run_cnt, "
            "programs that ran for the producer's opens), next to the measured added cost.\n\n"
            + table(["tracer", "BPF ns per open", "per program", "measured added ns", "gap"], rows))


def section_startup(reps: int, rss_seconds: float) -> str:
    rows = []
    every = {**tracers(), "eunomia-exporter": exporter_tracer()}
    # Later runs of an object load against a cached minimal kernel BTF; this row shows a run without it.
    cold = Tracer("opensnoop (table), no BTF cache", every["opensnoop (table)"].argv,
                  env={**os.environ, "PYEUNOMIA_NO_BTF_CACHE": "1"})
    every = {"opensnoop (table)": every.pop("opensnoop (table)"), cold.name: cold, **every}
    for name, tracer in every.items():
        if name == "opensnoop --json" or tracer.silent:
            continue
        if name == LIBBPF_TOOLS:  # its stdout to a file is block-buffered: the first line would wait for 4 KiB
            tracer = Tracer(f"{name}, stdout line-buffered", ["stdbuf", "-oL", *tracer.argv])
            name = tracer.name
        first = startup.first_open(tracer, reps)
        rss = startup.rss_after(tracer, rss_seconds)
        rows.append([name, first.text("{:.3f}"), f"{rss / 1024:.1f}"])
    return (f"Launch to the first open printed ({reps} repetitions; for the exporter, to its counter in "
            f"/metrics), and RSS after {rss_seconds:.0f} s of tracing.\n\n"
            + table(["tracer", "seconds to first open", "RSS MiB"], rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--opens", type=int, default=500_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="fewer opens and repetitions")
    p.add_argument("-o", "--output", default=str(ROOT / "BENCHMARKS.md"))
    args = p.parse_args()
    n, reps, rss_s = (100_000, 2, 2.0) if args.quick else (args.opens, args.reps, 10.0)
    parts = ["# Benchmarks\n", "Written by `make bench` (bench/run.py) from one run on this machine:\n"]
    parts.append(table(["", ""], [[k, v] for k, v in machine().items()]))
    print("per-open overhead...", file=sys.stderr)
    text, added = section_overhead(n, reps)
    parts += ["\n## 1. Per-open overhead\n", text]
    print("loss...", file=sys.stderr)
    parts += ["\n## 2. Loss at full speed\n", section_loss(n * 2)]
    print("decode...", file=sys.stderr)
    parts += ["\n## 3. Decode throughput\n", section_decode()]
    print("floor...", file=sys.stderr)
    parts += ["\n## 4. The floor\n", section_floor(n, added)]
    print("start-up...", file=sys.stderr)
    parts += ["\n## 5. Start-up and memory\n", section_startup(reps, rss_s)]
    try:
        import exporter_bench
        print("exporter...", file=sys.stderr)
        parts += ["\n## 6. Exporter\n", exporter_bench.markdown(quick=args.quick)]
    except ImportError:
        parts += ["\n## 6. Exporter\n", "Not measured: the exporter benchmark is missing.\n"]
    import catalogue
    print("catalogue...", file=sys.stderr)
    load_before = os.getloadavg()[0]
    rows = catalogue.run_all(1 if args.quick else 3, args.quick, None,
                             progress=lambda s: print(f"  {s}", file=sys.stderr))
    parts += ["\n" + catalogue.section(rows, load_before)]
    out = Path(args.output)
    soak = "\n## Soak\n"  # written by `make soak` (bench/soak.py): kept across `make bench`
    if out.exists() and soak in out.read_text():
        parts.append(soak + out.read_text().split(soak, 1)[1].split("\n## ", 1)[0])  # the soak section only
    out.write_text("\n".join(parts))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
