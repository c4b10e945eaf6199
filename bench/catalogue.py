"""The catalogue side by side: each of our tools (`ecli run NAME`) beside
Debian's libbpf-tools C tool of the same name and, where Debian ships one,
bpftrace's NAME.bt, under the same generated load (bench/loadgen.c).

For each tracer: events generated, events it reported, added ns per
operation on the loaded process (the load pinned to one CPU, the tracer to
the other; against untraced runs made just before that tracer started, so
slow drift of the machine does not land on one tracer), the tracer's BPF
programs' own run time per operation (kernel.bpf_stats_enabled, the
programs the tracer's process holds: the part of the added cost that is
the tracer's kernel-side code alone, without the noise of whole-syscall
timings: an exec's 700 us vary by +-50 us between runs), start-up to its
first event, and its RSS after the load. A peer
that cannot run on this kernel (most use kprobes, which it lacks) is listed
with libbpf's or bpftrace's first error line.

    .venv/bin/python bench/catalogue.py [--quick] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import BIN, OUT, PRODUCER_CPU, ROOT, TRACER_CPU, BpfStats, Stat, bpf_programs, floor_package, rss_kib

LOADGEN_SRC = ROOT / "bench" / "loadgen.c"
MARK = "pyeuload"  # the load's comm
EXEC_MARK = "pyeuexec"  # what its exec'd children are called
LOOP_MARK = "$loop"  # the loop device's name (loop3), known once it is set up
FLOOR = "no-op programs on its hooks (kernel floor)"


@dataclass(frozen=True)
class Case:
    tool: str
    load: str  # loadgen's mode
    n: int  # operations per run
    count: str = "lines"  # lines: lines naming the load; hist: histogram totals; row: a number on the row of `mark`
    mark: str = MARK
    ours: tuple[str, ...] = ()  # options after `ecli run NAME`
    c_args: tuple[str, ...] = ()
    bt: bool = False  # bpftrace has /usr/sbin/NAME.bt
    disk: bool = False  # the load's file on the real disk (/var/tmp), not tmpfs: its IO raises hard irqs
    bt_mark: str = ""  # bpftrace's own way of naming the load, when it differs
    note: str = ""
    floor: str = ""  # bench/floor/NAME.bpf.c: no-op programs on the hooks this load reaches


CASES: tuple[Case, ...] = (
    Case("execsnoop", "exec", 2_000, mark=EXEC_MARK, bt=True, floor="execve"),
    Case("exitsnoop", "exec", 2_000, mark=EXEC_MARK),
    Case("threadsnoop", "thread", 20_000, bt=True),
    Case("killsnoop", "kill", 50_000, bt=True, floor="kill"),
    Case("sigsnoop", "kill", 50_000),
    Case("statsnoop", "stat", 50_000, bt=True),
    Case("syncsnoop", "fsync", 200_000, bt=True, floor="fdatasync"),
    Case("mountsnoop", "mount", 2_000),
    Case("tcpconnect", "connect", 10_000, bt=True),
    Case("tcpaccept", "connect", 10_000, bt=True),
    Case("tcplife", "connect", 10_000, bt=True),
    Case("tcpstates", "connect", 10_000),
    Case("tcpconnlat", "connect", 10_000),
    Case("bindsnoop", "bind", 20_000),
    Case("gethostlatency", "resolve", 50_000, bt=True, floor="getaddrinfo"),
    Case("biosnoop", "dio", 20_000, bt=True),
    Case("biolatency", "dio", 20_000, count="hist", bt=True),
    Case("bitesize", "dio", 20_000, count="hist", bt=True),
    Case("biopattern", "dio", 20_000, count="row", mark=LOOP_MARK),
    Case("runqlat", "switch", 50_000, count="hist", bt=True),
    Case("cpudist", "switch", 50_000, count="hist"),
    Case("syscount", "syscall", 200_000, count="row", ours=("-P",), c_args=("-P",), bt=True,
         bt_mark="@process[pyeuload]"),
    Case("softirqs", "connect", 10_000, count="hist", ours=("-d",), c_args=("-d",),
         note="machine-wide: every soft irq in the run's window, not only the load's"),
    Case("hardirqs", "fsync", 5_000, count="hist", ours=("-d",), c_args=("-d",), disk=True,
         note="machine-wide: every hard irq in the run's window, not only the load's"),
)

_LIBBPF_HIST = re.compile(rb"^\s*\d+\s*->\s*\d+\s*:\s*(\d+)", re.M)
_BPFTRACE_HIST = re.compile(rb"^\[[^\]\n]*[\])]\s+(\d+)\s+\|", re.M)
_NUMBER = re.compile(rb"\b(\d+)\b")


def reported(case: Case, output: bytes) -> int:
    """How many of the load's events a tracer's output shows."""
    if case.count == "hist":
        return sum(int(m) for m in _LIBBPF_HIST.findall(output)) + sum(int(m) for m in _BPFTRACE_HIST.findall(output))
    mark = case.mark.encode()
    if case.count == "row":
        total, column = 0, None
        for line in output.splitlines():
            cells = line.split()
            if b"COUNT" in cells:
                column = cells.index(b"COUNT")  # the tools' tables: the count under its header
            elif mark in line:
                if column is not None and column < len(cells) and cells[column].isdigit():
                    total += int(cells[column])
                else:  # bpftrace's `@process[comm]: 123`
                    numbers = _NUMBER.findall(line.split(mark, 1)[1])
                    total += int(numbers[0]) if numbers else 0
        return total
    return sum(1 for line in output.splitlines() if mark in line)


@dataclass
class Tracer:
    label: str
    argv: list[str]
    mark: str = ""  # what names the load in this tracer's output, when not the case's mark
    startup_argv: list[str] | None = None  # start-up measured apart, with this command
    silent: bool = False  # prints nothing: the floor's no-op programs


@dataclass
class Result:
    label: str
    error: str = ""
    generated: int = 0
    reported: int = 0
    added_ns: Stat | None = None
    bpf_ns: float | None = None  # the tracer's BPF programs' run time per operation
    startup_s: float | None = None
    rss_kib: int = 0
    notes: list[str] = field(default_factory=list)


def build_loadgen() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    exe = OUT / "loadgen"
    if not exe.exists() or exe.stat().st_mtime < LOADGEN_SRC.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(exe), str(LOADGEN_SRC)], check=True)
    return exe


class Fixtures:
    """What loads need: a copy of /bin/true named pyeuexec, a file to stat and
    fsync, a mount point, a loop device to read with O_DIRECT."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pyeu-catalogue-"))
        # The tracers' output on tmpfs: on the load's file system, a tracer's
        # writes joined the journal commits the fsync load waits for, so the
        # syncsnoop rows measured output volume as much as tracing.
        self.out_dir = Path(tempfile.mkdtemp(prefix="pyeu-catalogue-out-", dir="/dev/shm"))
        self.exe = self.dir / EXEC_MARK
        shutil.copy("/bin/true", self.exe)
        self.file = self.dir / "file"
        self.file.write_bytes(b"x" * 4096)
        # syncsnoop's fdatasync on tmpfs: a no-op sync (~0.2 us) instead of ext4's ~46 us journal and cache
        # flush, whose run-to-run spread (+-1.5 us) was as large as the tracer's cost being measured
        self.sync_file = self.out_dir / "sync"
        self.sync_file.write_bytes(b"x" * 4096)
        self.mnt = self.dir / "mnt"
        self.mnt.mkdir()
        backing = Path("/var/tmp") / f"pyeu-catalogue-{os.getpid()}.img"  # not tmpfs: a real file under the loop
        with open(backing, "wb") as f:
            f.truncate(64 << 20)
        self.backing = backing
        self.loop = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", str(backing)], check=True,
                                   capture_output=True, text=True).stdout.strip()

    def arg(self, mode: str, disk: bool = False) -> str:
        if disk:
            return str(self.backing) + ".sync"
        return {"exec": str(self.exe), "stat": str(self.file), "fsync": str(self.sync_file), "mount": str(self.mnt),
                "dio": self.loop}.get(mode, "")

    def close(self) -> None:
        subprocess.run(["losetup", "-d", self.loop], capture_output=True)
        self.backing.unlink(missing_ok=True)
        Path(str(self.backing) + ".sync").unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.out_dir, ignore_errors=True)


def run_load(exe: Path, case: Case, fx: Fixtures, n: int) -> float:
    out = subprocess.run([str(exe), case.load, str(n), str(PRODUCER_CPU), fx.arg(case.load, case.disk)], check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return float(out.strip())


def tracers(case: Case) -> list[Tracer]:
    out = []
    if os.path.exists(ROOT / "src" / "pyeunomia" / "tools" / case.tool / "package.json"):
        out.append(Tracer(f"ecli run {case.tool}", [str(BIN / "ecli"), "run", case.tool, *case.ours]))
    if os.path.exists(f"/usr/sbin/{case.tool}"):
        # stdio into a file is block-buffered, as a user redirecting it gets: the counted run keeps that; the
        # start-up run is line-buffered, so its first event shows when it happens
        argv = [f"/usr/sbin/{case.tool}", *case.c_args]
        out.append(Tracer("libbpf-tools (C)", argv, startup_argv=["stdbuf", "-oL", *argv]))
    if case.bt and shutil.which("bpftrace") and os.path.exists(f"/usr/sbin/{case.tool}.bt"):
        out.append(Tracer("bpftrace .bt", ["bpftrace", f"/usr/sbin/{case.tool}.bt"], case.bt_mark))
    if case.floor:
        out.append(Tracer(FLOOR, [str(BIN / "ecli"), "run", str(floor_package(case.floor))], silent=True))
    return out


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if re.search(r"error|fail|not permitted|invalid|no such", line, re.I) and "RLIMIT_MEMLOCK" not in line:
            return line.strip()[:120]
    return (text.strip().splitlines() or ["exited"])[-1][:120]


def bpf_run_ns(pid: int) -> int:
    """The run time so far of the BPF programs process `pid` holds: their ids
    from the fdinfo of its program and link fds (Debian's bpftool 7.1 is
    built without the skeleton that names holders), their run times from
    bpftool; needs kernel.bpf_stats_enabled."""
    ids = set()
    fds = Path(f"/proc/{pid}/fdinfo")
    for info in fds.iterdir() if fds.exists() else ():
        try:
            for line in info.read_text().splitlines():
                if line.startswith("prog_id:"):
                    ids.add(int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return sum(int(p.get("run_time_ns", 0)) for p in bpf_programs() if p.get("id") in ids)


def measure(case: Case, tracer: Tracer, exe: Path, fx: Fixtures, reps: int, untraced: Stat) -> Result:
    res = Result(tracer.label)
    if tracer.mark:
        case = Case(**{**case.__dict__, "mark": tracer.mark})
    out_path = fx.out_dir / "trace.out"
    if tracer.startup_argv is not None:
        res.startup_s = _startup(case, tracer.startup_argv, exe, fx, out_path)
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(["taskset", "-c", str(TRACER_CPU), *tracer.argv], stdout=out,
                                stderr=subprocess.PIPE, start_new_session=True)
        start = time.monotonic()
        try:
            if tracer.silent:
                time.sleep(2.0)  # attached in ~0.1 s; nothing to wait for
            elif tracer.startup_argv is None:
                res.startup_s = _until_first(case, proc, out_path, exe, fx, start)
            else:
                time.sleep(max(1.0, 2 * (res.startup_s or 1.0)))  # attached well before this
            if proc.poll() is not None:
                res.error = _first_error(_stop(proc))
                return res
            base = len(out_path.read_bytes()) if case.count == "lines" else 0
            costs = []
            with BpfStats():
                bpf_before = bpf_run_ns(proc.pid)
                for _ in range(reps):
                    costs.append(run_load(exe, case, fx, case.n))
                bpf_after = bpf_run_ns(proc.pid)
            res.bpf_ns = (bpf_after - bpf_before) / (case.n * reps)
            time.sleep(1.0)  # let the last events drain
            res.rss_kib = rss_kib(proc.pid)
            err = _stop(proc)
            if proc.returncode not in (0, -signal.SIGINT, 130) and not out_path.stat().st_size:
                res.error = _first_error(err)
                return res
            data = out_path.read_bytes()
            res.generated = case.n * reps
            res.reported = -1 if tracer.silent else reported(case, data[base:])
            med = untraced.median
            res.added_ns = Stat([c - med for c in costs])
            lost = [line for line in err.splitlines() if "lost" in line.lower()]
            res.notes.extend(line.strip()[:80] for line in lost[:1])
        finally:
            if proc.poll() is None:
                _stop(proc)
    return res


def _startup(case: Case, argv: list[str], exe: Path, fx: Fixtures, out_path: Path) -> float | None:
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(["taskset", "-c", str(TRACER_CPU), *argv], stdout=out, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            return _until_first(case, proc, out_path, exe, fx, time.monotonic())
        finally:
            _stop(proc)


def _until_first(case: Case, proc: subprocess.Popen[bytes], out_path: Path, exe: Path, fx: Fixtures,
                 start: float, timeout: float = 30.0) -> float | None:
    """Seconds from launch to the first event naming the load (small loads
    repeated); None for tools that print only at exit (histograms, tables):
    for those, the time until the tracer says it is tracing is not comparable."""
    if case.count != "lines":
        time.sleep(3.0)  # attach
        return None
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            return None
        run_load(exe, case, fx, 1)
        if reported(case, out_path.read_bytes()):
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def _stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return err.decode("utf-8", "replace") if err else ""


def run_all(reps: int, quick: bool, only: set[str] | None, peers: bool = False,
            progress: Callable[[str], None] = lambda s: None) -> list[tuple[Case, Stat, list[Result]]]:
    exe = build_loadgen()
    fx = Fixtures()
    rows = []
    try:
        for case in CASES:
            if only and case.tool not in only:
                continue
            if not os.path.exists(ROOT / "src" / "pyeunomia" / "tools" / case.tool / "package.json") and not peers:
                continue  # not in the catalogue yet
            if quick:
                case = Case(**{**case.__dict__, "n": max(100, case.n // 10)})
            if case.mark == LOOP_MARK:
                case = Case(**{**case.__dict__, "mark": os.path.basename(fx.loop)})
            results, baselines = [], []
            for tracer in tracers(case):
                progress(f"{case.tool}: {tracer.label}")
                untraced = Stat([run_load(exe, case, fx, case.n) for _ in range(reps)])
                baselines.extend(untraced.values)
                results.append(measure(case, tracer, exe, fx, reps, untraced))
            rows.append((case, Stat(baselines or [0.0]), results))
    finally:
        fx.close()
    return rows


SECTION = "## 7. The catalogue beside its peers"
INTRO = ("Each tool of the catalogue (`ecli run NAME`, table output) beside Debian's libbpf-tools C tool of the "
         "same name and bpftrace's NAME.bt where Debian ships one, all writing to a file on tmpfs, under one load "
         "(bench/loadgen.c, pinned to CPU 1; tracers on CPU 0): generated = operations made, reported = the "
         "events naming the load (or histogram totals, which include the machine's own activity), added ns per "
         "op = the load's time per operation traced minus untraced, the untraced runs made just before each "
         "tracer (median, min–max of the repetitions; whole-syscall timings: an exec's ~700 µs vary by "
         "±50 µs between runs), BPF ns per op = the run time of the tracer's own BPF programs "
         "(kernel.bpf_stats_enabled) per operation, the kernel-side part of its cost without that noise. "
         "A peer that cannot run here says why (most need kprobes, which this kernel lacks).\n\n")


def markdown(rows: list[tuple[Case, Stat, list[Result]]]) -> str:
    head = ("| tool | load | tracer | generated | reported | added ns per op | BPF ns per op | start-up to first event "
            "| RSS MiB |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for case, untraced, results in rows:
        load = f"{case.load} ({untraced.median:,.0f} ns/op untraced)"
        for r in results:
            if r.error:
                lines.append(f"| {case.tool} | {load} | {r.label} | – | – | – | – | – | cannot run here: {r.error} |")
                continue
            added = r.added_ns.text("{:+,.0f}") if r.added_ns else "–"
            startup = f"{r.startup_s:.2f} s" if r.startup_s is not None else "– (prints at exit)"
            shown = f"{r.reported:,}"
            if r.reported < 0:
                shown, startup = "– (prints nothing)", "–"
            note = f" ({'; '.join(r.notes + ([case.note] if case.note else []))})" if r.notes or case.note else ""
            bpf = f"{r.bpf_ns:,.0f}" if r.bpf_ns is not None else "–"
            lines.append(f"| {case.tool} | {load} | {r.label} | {r.generated:,} | {shown}{note} | {added} | "
                         f"{bpf} | {startup} | {r.rss_kib / 1024:.1f} |")
    return head + "\n".join(lines) + "\n" + against_bpftrace(rows)


def against_bpftrace(rows: list[tuple[Case, Stat, list[Result]]]) -> str:
    """Each event tool's added cost as a share of bpftrace's on the same
    load, beside the kernel floor's share: what any program on those hooks
    costs. Only where bpftrace's tool reported the load's events."""
    out = []
    for case, _, results in rows:
        by = {r.label: r for r in results if r.added_ns and not r.error}
        ours, bt, floor = by.get(f"ecli run {case.tool}"), by.get("bpftrace .bt"), by.get(FLOOR)
        if case.count != "lines" or not ours or not bt or bt.reported <= 0 or not ours.added_ns or not bt.added_ns:
            continue
        b = bt.added_ns.median
        floor_text = f"{floor.added_ns.median / b:.3f}" if floor and floor.added_ns else "–"
        over = f"{(ours.added_ns.median - floor.added_ns.median) / b:.3f}" if floor and floor.added_ns else "–"
        bpf = f"{ours.bpf_ns / bt.bpf_ns:.3f}" if ours.bpf_ns and bt.bpf_ns else "–"
        out.append(f"| {case.tool} | {ours.added_ns.median / b:.3f} | {floor_text} | {over} | {bpf} |")
    if not out:
        return ""
    return ("\nEvent tools against bpftrace's (added ns per op divided by bpftrace's; the floor's no-op programs on "
            "the same hooks; ours above that floor; BPF run time divided by bpftrace's):\n\n"
            "| tool | ours / bpftrace | kernel floor / bpftrace | ours above the floor / bpftrace "
            "| BPF ns, ours / bpftrace |\n|---|---|---|---|---|\n" + "\n".join(out) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a tenth of the operations, one repetition")
    ap.add_argument("--only", help="these tools only, comma-separated")
    ap.add_argument("--peers", action="store_true", help="also the tools not in the catalogue yet (peers only)")
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    ap_write = args.write
    load_before = os.getloadavg()[0]
    rows = run_all(1 if args.quick else 3, args.quick, only, args.peers, progress=lambda s: print(s, file=sys.stderr))
    text = section(rows, load_before)
    if ap_write:
        write_section(text)
    print(text)


def section(rows: list[tuple[Case, Stat, list[Result]]], load_before: float) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (f"{SECTION}\n\n{INTRO}Run {when}; load average {load_before:.2f} before and "
            f"{os.getloadavg()[0]:.2f} after (other work on the machine widens the spread).\n\n{markdown(rows)}")


def write_section(text: str) -> None:
    """Replace (or append) this section of BENCHMARKS.md, keeping the rest."""
    path = ROOT / "BENCHMARKS.md"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        tail = rest.split("\n## ", 1)[1] if "\n## " in rest else ""
        new = head + text + ("\n## " + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


if __name__ == "__main__":
    main()
