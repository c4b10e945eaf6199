"""What tracing opens costs the traced process, whether every open arrives,
and what the BPF programs themselves cost (the floor)."""

from __future__ import annotations

import subprocess

from common import BpfStats, Stat, Tracer, bpf_programs, build_producer, output_dir, produce, repeat, temp_dir, tracers

TARGET = "/etc/hostname"


def per_open_overhead(n: int, reps: int, extra: dict[str, Tracer] | None = None
                      ) -> tuple[Stat, dict[str, Stat], dict[str, Stat]]:
    """ns per open untraced (all baselines pooled), under each tracer writing
    to a file on tmpfs, and each tracer's own baseline: untraced runs made
    just before it started. The machine drifts (the untraced spread here is
    ~700 ns between runs minutes apart), so a tracer is compared with the
    runs nearest in time, not with one baseline taken at the start."""
    exe = build_producer()
    work = temp_dir()
    out = output_dir()
    pooled: list[float] = []
    traced: dict[str, Stat] = {}
    baselines: dict[str, Stat] = {}
    for name, tracer in {**tracers(), **(extra or {})}.items():
        if name == "ecli run opensnoop":
            continue  # the same kernel program and reader as opensnoop; measured for start-up only
        baselines[name] = repeat(reps, lambda: produce(exe, n, TARGET))
        pooled += baselines[name].values
        run = tracer.start(out / "trace.out")
        try:
            run.wait_ready(work)
            traced[name] = repeat(reps, lambda: produce(exe, n, TARGET))
        finally:
            run.stop()
            (out / "trace.out").unlink(missing_ok=True)
    out.rmdir()
    return Stat(pooled), traced, baselines


def loss(n: int, producers: int, tracer: Tracer) -> tuple[int, int, str]:
    """(opens produced, opens the tracer printed, its loss report)."""
    exe = build_producer()
    work = temp_dir()
    targets = []
    for i in range(producers):
        target = work / f"p{i}"
        target.write_text("x")
        targets.append(target)
    out = work / "trace.out"
    run = tracer.start(out)
    try:
        run.wait_ready(work)
        procs = [subprocess.Popen([str(exe), str(n), str(t), str(i % 2)], stdout=subprocess.DEVNULL)
                 for i, t in enumerate(targets)]
        for p in procs:
            p.wait()
    finally:
        err = run.stop()
    data = out.read_bytes()
    delivered = sum(data.count(t.name.encode() + b"\n") for t in targets)
    reports = [line for line in err.splitlines() if "lost" in line.lower()]
    return n * producers, delivered, "; ".join(reports)[:160]


def _prog_stats() -> dict[str, tuple[int, int]]:
    return {p.get("name", "?"): (p.get("run_time_ns", 0), p.get("run_cnt", 0)) for p in bpf_programs()}


def bpf_floor(n: int, tracer: Tracer) -> dict[str, float]:
    """ns per run of each of the tracer's BPF programs, with run-time stats on."""
    exe = build_producer()
    work = temp_dir()
    with BpfStats():
        run = tracer.start(work / "trace.out")
        try:
            run.wait_ready(work)
            before = _prog_stats()
            produce(exe, n, TARGET)
            after = _prog_stats()
        finally:
            run.stop()
    out = {}
    for name, (t1, c1) in after.items():
        t0, c0 = before.get(name, (0, 0))
        if c1 - c0 >= n // 2:
            out[name] = (t1 - t0) / (c1 - c0)
    return out
