"""Load and soak: opensnoop and the exporter left running under the full-speed
open producer plus a process opening random file names.

What is watched: the tracers' RSS at the start and the end, the exporter's
/metrics latency, and the events lost (which must be reported, never hidden).
`make soak` runs it for 10 minutes and adds its figures to BENCHMARKS.md; the
test suite runs 30 seconds of it (tests/e2e/test_soak.py).
"""

from __future__ import annotations

import argparse
import os
import random
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

from common import BIN, ROOT, build_producer, rss_kib

TUTORIAL_CONFIG = """\
programs:
  - name: opensnoop
    metrics:
      counters:
        - name: eunomia_file_open_counter
          description: opens by process and file
          labels:
            - name: pid
            - name: comm
            - name: filename
              from: fname
    compiled_ebpf_filename:
"""


@dataclass
class SoakResult:
    seconds: float
    rss_kib: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (start, end)
    scrape_ms: list[float] = field(default_factory=list)
    scrape_errors: int = 0
    opens: int = 0
    random_opens: int = 0
    lost_report: str = ""
    exporter_lost: float = 0.0
    alive_at_end: dict[str, bool] = field(default_factory=dict)

    def p(self, q: float) -> float:
        s = sorted(self.scrape_ms)
        return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


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


def soak(seconds: float, warmup: float = 5.0) -> SoakResult:
    work = Path(tempfile.mkdtemp(prefix="pyeu-soak-"))
    producer = build_producer()
    config = work / "config.yaml"
    config.write_text(TUTORIAL_CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    procs = {
        "opensnoop": subprocess.Popen([str(BIN / "opensnoop")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True, start_new_session=True),
        "eunomia-exporter": subprocess.Popen([str(BIN / "eunomia-exporter"), "-c", str(config), "--listen",
                                              f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, text=True, start_new_session=True),
    }
    result = SoakResult(seconds)
    stop = threading.Event()
    counter = [0]
    try:
        _wait_for(url, 30)
        names = threading.Thread(target=_random_names, args=(stop, work, counter), daemon=True)
        names.start()
        load = subprocess.Popen(["sh", "-c", f"while :; do {producer} 1000000 /etc/hostname 1 >/dev/null; done"],
                                start_new_session=True)
        time.sleep(warmup)
        start_rss = {name: rss_kib(p.pid) for name, p in procs.items()}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                ms, body = _scrape(url)
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
        time.sleep(1.5)
        _ms, body = _scrape(url)
        result.exporter_lost = _metric_sum(body, "eunomia_exporter_events_lost")
        result.opens = int(_metric_sum(body, "eunomia_exporter_events_received"))
    finally:
        stop.set()
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
    return (f"{r.seconds / 60:.0f} minutes of the full-speed producer (restarted every million opens) plus "
            f"{r.random_opens:,} opens of random names, with opensnoop and the exporter (the tutorial's "
            "config: pid, comm and filename labels) both tracing.\n\n" + "\n".join(rows) + "\n\n"
            f"- /metrics latency over {len(r.scrape_ms)} scrapes: p50 {r.p(0.5):.1f} ms, p99 {r.p(0.99):.1f} ms, "
            f"max {max(r.scrape_ms or [0]):.1f} ms; failed scrapes: {r.scrape_errors}\n"
            f"- events the exporter received: {r.opens:,}; reported lost: {r.exporter_lost:,.0f}\n"
            f"- opensnoop's loss report: {r.lost_report or 'none (no event lost)'}\n")


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
