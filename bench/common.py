"""Shared pieces of the benchmarks: the machine's description, statistics,
the C producer, and starting tracers the same way for every tool."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"
BPFTRACE_OPENSNOOP = "/usr/sbin/opensnoop.bt"
LIBBPF_TOOLS_OPENSNOOP = "/usr/sbin/opensnoop"  # Debian's libbpf-tools (C, libbpf)
# eunomia-bpf's tutorial opensnoop (a perf event array and a hash map), compiled by our ecc
EXAMPLES = Path(os.environ.get("PYEUNOMIA_EUNOMIA_EXAMPLES", ROOT.parent / "shared" / "fixtures" / "eunomia-examples"))
TUTORIAL = "ecli run tutorial opensnoop (perf array)"
# ... with the perf array kept as written (ecli loads it as a ring buffer by default: runner/perf2ring.py)
TUTORIAL_PERF = "ecli run --perf-array tutorial opensnoop"
TRACER_CPU = 0
PRODUCER_CPU = 1


def machine() -> dict[str, str]:
    from pyeunomia.kernel import libbpf

    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "CPU": model,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "libbpf": libbpf.version_text(),
        "Python": platform.python_version(),
        "bpftrace": _version(["bpftrace", "--version"]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except OSError:
        return "not installed"


@dataclass
class Stat:
    """The median of repetitions, with min and max."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def text(self, fmt: str = "{:,.0f}") -> str:
        return f"{fmt.format(self.median)} ({fmt.format(min(self.values))}–{fmt.format(max(self.values))})"


def build_producer() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    exe = OUT / "producer"
    src = ROOT / "bench" / "producer.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def produce(exe: Path, n: int, path: str, cpu: int = PRODUCER_CPU) -> float:
    """ns per open of one producer run."""
    out = subprocess.run([str(exe), str(n), path, str(cpu)], check=True, capture_output=True, text=True).stdout
    return float(out.strip())


@dataclass
class Tracer:
    """A tracing command whose output goes to a file."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    metrics_url: str | None = None  # an exporter reports opens here, not in its output
    # what shows the marker's open was seen, when not its file name (an in-kernel
    # count keyed by process name: this process's name)
    ready_text: str | None = None
    # prints nothing (the floor's no-op programs): ready once attached, a fixed wait
    silent: bool = False

    def start(self, out: Path) -> Running:
        f = open(out, "wb")
        proc = subprocess.Popen(["taskset", "-c", str(TRACER_CPU), *self.argv], stdout=f,
                                stderr=subprocess.PIPE, env=self.env, start_new_session=True)
        return Running(self, proc, f, out)


@dataclass
class Running:
    tracer: Tracer
    proc: subprocess.Popen[bytes]
    file: object
    out: Path

    def wait_ready(self, marker_dir: Path, timeout: float = 30) -> float:
        """Open a marker file until the tracer reports it; seconds it took."""
        start = time.monotonic()
        if self.tracer.silent:
            time.sleep(2.0)  # ecli attaches in ~0.1 s
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.tracer.name} exited: {self.stderr()}")
            return time.monotonic() - start
        marker = marker_dir / f"ready-{os.getpid()}-{int(start * 1000)}"
        marker.write_text("x")
        needle = (self.tracer.ready_text or marker.name).encode()
        while time.monotonic() - start < timeout:
            with open(marker):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.tracer.name} exited: {self.stderr()}")
            if needle in self._reported():
                return time.monotonic() - start
            time.sleep(0.001)  # the resolution of the start-up figures
        raise RuntimeError(f"{self.tracer.name} never reported an open: {self.stderr()}")

    def _reported(self) -> bytes:
        if self.tracer.metrics_url is None:
            return self.out.read_bytes()
        import urllib.request

        try:
            with urllib.request.urlopen(self.tracer.metrics_url, timeout=2) as resp:
                return bytes(resp.read())
        except OSError:
            return b""  # not listening yet

    def stderr(self) -> str:
        return "" if self.proc.stderr is None else "(see its stderr)"

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            _, err = self.proc.communicate()
        self.file.close()  # type: ignore[attr-defined]
        return err.decode("utf-8", "replace")


def tracers() -> dict[str, Tracer]:
    out: dict[str, Tracer] = {
        "opensnoop (table)": Tracer("opensnoop (table)", [str(BIN / "opensnoop")]),
        "opensnoop --json": Tracer("opensnoop --json", [str(BIN / "opensnoop"), "--json"]),
        "ecli run opensnoop": Tracer("ecli run opensnoop", [str(BIN / "ecli"), "run", "opensnoop"]),
    }
    package = tutorial_package()
    if package is not None:
        out[TUTORIAL] = Tracer(TUTORIAL, [str(BIN / "ecli"), "run", str(package)])
        out[TUTORIAL_PERF] = Tracer(TUTORIAL_PERF, [str(BIN / "ecli"), "run", "--perf-array", str(package)])
    out[FLOOR_OPENAT] = Tracer(FLOOR_OPENAT, [str(BIN / "ecli"), "run", str(floor_package("openat"))], silent=True)
    if os.path.exists(LIBBPF_TOOLS_OPENSNOOP):
        out["libbpf-tools opensnoop (C)"] = Tracer("libbpf-tools opensnoop (C)", [LIBBPF_TOOLS_OPENSNOOP])
    if shutil.which("bpftrace") and os.path.exists(BPFTRACE_OPENSNOOP):
        out["bpftrace opensnoop.bt"] = Tracer("bpftrace opensnoop.bt", ["bpftrace", BPFTRACE_OPENSNOOP])
    return out


def tutorial_package() -> Path | None:
    """The tutorial's opensnoop.bpf.c compiled by our ecc (once per source
    change), or None when eunomia-bpf's examples are not here."""
    source = EXAMPLES / "opensnoop"
    if not (source / "opensnoop.bpf.c").exists():
        return None
    out = OUT / "tutorial-opensnoop"
    package = out / "package.json"
    compiler = ROOT / "src" / "pyeunomia" / "compiler"
    inputs = [source / "opensnoop.bpf.c", source / "opensnoop.h", *compiler.glob("*.py")]
    newest = max(p.stat().st_mtime for p in inputs)
    if not package.exists() or package.stat().st_mtime < newest:
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(BIN / "ecc"), str(source / "opensnoop.bpf.c"), str(source / "opensnoop.h"),
                        "-o", str(out)], check=True, capture_output=True)
    return package


FLOOR = ROOT / "bench" / "floor"
FLOOR_OPENAT = "no-op programs on sys_enter/exit_openat (kernel floor)"


def floor_package(name: str) -> Path:
    """bench/floor/NAME.bpf.c (no-op programs on a tracer's hooks) compiled
    by our ecc, once per source change."""
    source = FLOOR / f"{name}.bpf.c"
    out = OUT / "floor" / name
    package = out / "package.json"
    compiler = ROOT / "src" / "pyeunomia" / "compiler"
    newest = max(p.stat().st_mtime for p in [source, *compiler.glob("*.py")])
    if not package.exists() or package.stat().st_mtime < newest:
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(BIN / "ecc"), str(source), "-o", str(out)], check=True, capture_output=True)
    return package


# The documented configs: the tutorial's (pid, comm and filename labels, counted
# from events) and opensnoop's in-kernel `opens` map read at scrape time.
TUTORIAL_CONFIG = ROOT / "examples" / "opensnoop.yaml"
IN_KERNEL_CONFIG = ROOT / "examples" / "opensnoop-kernel.yaml"


def exporter_tracer(port: int = 18526, in_kernel: bool = False, name: str = "eunomia-exporter") -> Tracer:
    """The exporter with the tutorial's config (an open is reported once its
    counter shows in /metrics), or counting in the kernel (once this
    process's name shows in the `opens` map)."""
    config = IN_KERNEL_CONFIG if in_kernel else TUTORIAL_CONFIG
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    return Tracer(name, [str(BIN / "eunomia-exporter"), "-c", str(config), "--listen", f"127.0.0.1:{port}"],
                  metrics_url=f"http://127.0.0.1:{port}/metrics",
                  ready_text=f'comm="{comm}"' if in_kernel else None)


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pyeu-bench-"))


def output_dir() -> Path:
    """Where tracers write while their cost is timed: tmpfs, so that no
    tracer's output brings writeback and journal work (kworkers that may run
    on the producer's CPU) into the producer's time."""
    return Path(tempfile.mkdtemp(prefix="pyeu-bench-out-", dir="/dev/shm"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def repeat(times: int, fn: Callable[[], float]) -> Stat:
    return Stat([fn() for _ in range(times)])


def bpf_programs() -> list[dict[str, Any]]:
    """`bpftool prog show` as JSON: every loaded program's id, name and, with
    kernel.bpf_stats_enabled, run_time_ns and run_cnt ([] if bpftool fails)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=False).stdout
    try:
        progs = json.loads(out or "[]")
    except ValueError:
        return []
    return progs if isinstance(progs, list) else []


class BpfStats:
    """kernel.bpf_stats_enabled on while measuring (it adds two clock reads
    per program run, ~50 ns here, to every tracer alike), as it was after."""

    PATH = Path("/proc/sys/kernel/bpf_stats_enabled")

    def __enter__(self) -> BpfStats:
        self.before = self.PATH.read_text().strip()
        self.PATH.write_text("1")
        return self

    def __exit__(self, *exc: object) -> None:
        self.PATH.write_text(self.before)
