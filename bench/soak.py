"""Load and soak: opensnoop and the exporter left running under the full-speed
open producer plus a process opening random file names.

What is watched: the tracers' RSS at the start and the end, the exporter's
/metrics latency, and the events lost (which must be reported, never hidden).
The start RSS is read at steady state: once the exporter holds the 10,000 label
sets its metric may keep (random names fill them in about 15 s), plus a few
seconds. `make soak` runs it for 10 minutes and adds its figures to
BENCHMARKS.md; the test suite runs 30 seconds of it (tests/e2e/test_soak.py).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, ROOT, TUTORIAL_CONFIG, build_producer, rss_kib

SERIES_LIMIT = 10_000  # the tutorial's metric keeps the default max_series
SETTLE_S = 3.0  # after the limit is reached, before the start RSS is read
IN_FLIGHT_MAX = 1000  # opens the exporter may not have read yet when its run count is read


@dataclass
class SoakResult:
    seconds: float
    warmup_s: float = 0.0  # until the exporter held SERIES_LIMIT label sets, plus SETTLE_S
    rss_kib: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (start, end)
    scrape_ms: list[float] = field(default_factory=list)
    scrape_errors: int = 0
    random_opens: int = 0
    alive_at_end: dict[str, bool] = field(default_factory=dict)
    # the exporter's accounting once the load stopped: every run of its BPF programs
    # (bpf_run_count) is an event received or one counted lost
    exporter_runs: int = 0
    exporter_received: int = 0
    exporter_lost: int = 0
    counted: int = 0  # the sum of the tutorial counter's series (overflow included)
    opensnoop_lost: int = 0
    opensnoop_total: int | None = None  # events it saw, when it reported losses
    lost_report: str = ""

    def p(self, q: float) -> float:
        s = sorted(self.scrape_ms)
        return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")

    @property
    def in_flight(self) -> int:
        return self.exporter_runs - self.exporter_received - self.exporter_lost


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _random_names(stop: threading.Event, where: Path, counter: list[int]) -> None:
    """Open (and fail to open) names nobody used before: unbounded label values."""
    rng = random.Random(4)
    while not stop.is_set():
        name = "".join(rng.choices(string.ascii_lowercase, k=12))
        try:
            os.close(os.open(where / name, os.O_RDONLY))
        except OSError:
            pass
        counter[0] += 1
        time.sleep(0.001)


def _scrape(url: str) -> tuple[float, str]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = resp.read().decode()
    return (time.perf_counter() - start) * 1000, body


def soak(seconds: float, warmup_timeout: float = 120.0) -> SoakResult:
    """Run the load for `seconds` after the warm-up: the exporter holding its
    10,000 label sets (steady state), then SETTLE_S more."""
    work = Path(tempfile.mkdtemp(prefix="pyeu-soak-"))
    producer = build_producer()
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    procs = {
        "opensnoop": subprocess.Popen([str(BIN / "opensnoop")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True, start_new_session=True),
        "eunomia-exporter": subprocess.Popen([str(BIN / "eunomia-exporter"), "-c", str(TUTORIAL_CONFIG), "--listen",
                                              f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, text=True, start_new_session=True),
    }
    result = SoakResult(seconds)
    stop = threading.Event()
    counter = [0]
    load = None
    try:
        _wait_for(url, 30)
        names = threading.Thread(target=_random_names, args=(stop, work, counter), daemon=True)
        names.start()
        load = subprocess.Popen(["sh", "-c", f"while :; do {producer} 1000000 /etc/hostname 1 >/dev/null; done"],
                                start_new_session=True)
        began = time.monotonic()
        while _metric_sum(_scrape(url)[1], "eunomia_exporter_series{") < SERIES_LIMIT:
            if time.monotonic() - began > warmup_timeout:
                raise RuntimeError(f"the exporter did not reach {SERIES_LIMIT} series in {warmup_timeout:.0f} s")
            time.sleep(0.5)
        time.sleep(SETTLE_S)
        result.warmup_s = time.monotonic() - began
        start_rss = {name: rss_kib(p.pid) for name, p in procs.items()}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                ms, _body = _scrape(url)
                result.scrape_ms.append(ms)
            except OSError:
                result.scrape_errors += 1
            time.sleep(1.0)
        result.rss_kib = {name: (start_rss[name], rss_kib(p.pid)) for name, p in procs.items()}
        result.alive_at_end = {name: p.poll() is None for name, p in procs.items()}
        os.killpg(load.pid, signal.SIGKILL)
        load.wait()
        stop.set()
        names.join(5)
        result.random_opens = counter[0]
        time.sleep(1.5)  # the last events read, the kernel's loss counter read (once a second)
        _ms, body = _scrape(url)
        result.exporter_received = int(_metric_sum(body, "eunomia_exporter_events_received"))
        result.exporter_lost = int(_metric_sum(body, "eunomia_exporter_events_lost"))
        result.exporter_runs = int(_metric_sum(body, "eunomia_exporter_bpf_run_count"))
        result.counted = int(_metric_sum(body, "eunomia_file_open_counter_total"))
    finally:
        stop.set()
        if load is not None and load.poll() is None:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait()
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for name, p in procs.items():
            try:
                _out, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                _out, err = p.communicate()
            if name == "opensnoop":
                result.lost_report = " ".join(line for line in (err or "").splitlines() if "lost" in line)
                m = re.search(r"(\d+) events lost \(of (\d+)\)", result.lost_report)
                if m:
                    result.opensnoop_lost, result.opensnoop_total = int(m.group(1)), int(m.group(2))
    return result


def _metric_sum(body: str, prefix: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith(prefix) and not line.startswith("#"):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return total


def _wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _scrape(url)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the exporter never answered on {url}")


def markdown(r: SoakResult) -> str:
    rows = ["| process | RSS at start MiB | RSS at end MiB | alive at end |", "|---|---|---|---|"]
    for name, (a, b) in r.rss_kib.items():
        rows.append(f"| {name} | {a / 1024:.1f} | {b / 1024:.1f} | {r.alive_at_end.get(name)} |")
    span = f"{r.seconds / 60:.0f} minutes" if r.seconds >= 120 else f"{r.seconds:.0f} seconds"
    opensnoop = (f"{r.opensnoop_lost:,} of {r.opensnoop_total:,} events lost ({r.lost_report})"
                 if r.opensnoop_total is not None else "none lost (no loss report)")
    return (f"{span} of the full-speed producer (restarted every million opens) plus {r.random_opens:,} opens of "
            "random names, with opensnoop and the exporter (the tutorial's config: pid, comm and filename labels) "
            f"both tracing. Start RSS: after a warm-up of {r.warmup_s:.0f} s, once the exporter held its "
            f"{SERIES_LIMIT:,} label sets (steady state) plus {SETTLE_S:.0f} s.\n\n" + "\n".join(rows) + "\n\n"
            f"- /metrics latency over {len(r.scrape_ms)} scrapes: p50 {r.p(0.5):.1f} ms, p99 {r.p(0.99):.1f} ms, "
            f"max {max(r.scrape_ms or [0]):.1f} ms; failed scrapes: {r.scrape_errors}\n"
            f"- the exporter: {r.exporter_runs:,} runs of its BPF programs, {r.exporter_received:,} events received, "
            f"{r.exporter_lost:,} reported lost, {r.in_flight:,} in flight when counted; its counter's series add "
            f"up to {r.counted:,}\n"
            f"- opensnoop: {opensnoop}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--write", action="store_true", help="add the figures to BENCHMARKS.md")
    args = p.parse_args()
    r = soak(args.seconds)
    text = markdown(r)
    print(text)
    if args.write:
        path = ROOT / "BENCHMARKS.md"
        doc = path.read_text() if path.exists() else "# Benchmarks\n"
        head = "\n## Soak\n"
        doc = doc.split(head)[0].rstrip("\n") + "\n" + head + "\n" + text
        path.write_text(doc)


if __name__ == "__main__":
    main()
