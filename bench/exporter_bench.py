"""eunomia-exporter benchmarks, against the real kernel (run as root):

(a) /metrics latency, p50 and p99, with 1k, 10k and 100k series while events
    keep arriving (a producer opening one file at a steady rate), scraped the
    way Prometheus scrapes (OpenMetrics, gzip);
(b) the exporter's CPU (utime + stime from /proc/PID/stat) at a given open
    rate, counting in userspace (the tutorial's labels) versus reading
    opensnoop's in-kernel `opens` map at scrape time;
(c) /metrics latency for one scraper while other clients connect: none, 50
    well-behaved ones (each scraping once a second), and 1,000 slow ones
    (each sends a partial request, a byte a second, and reconnects when
    closed), with the exporter's threads and RSS.

    .venv/bin/python bench/exporter_bench.py            # both, as markdown tables
    .venv/bin/python bench/exporter_bench.py scrape     # only (a)
    .venv/bin/python bench/exporter_bench.py cpu        # only (b)
    .venv/bin/python bench/exporter_bench.py clients    # only (c)
    .venv/bin/python bench/exporter_bench.py --quick    # fewer scrapes, shorter windows

bench/run.py calls markdown(quick=...) for BENCHMARKS.md.

The load is bench/producer.c (open and close one file in a loop), built with
gcc. Only processes named pyeu* are traced, so the machine's own opens do not
count. The producer runs on CPU 1, the exporter on CPU 0.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
EXPORTER = [sys.executable, "-m", "pyeunomia.cli.exporter"]
COMM = "pyeu"  # every process the benchmark traces has a name starting with this
TICK = os.sysconf("SC_CLK_TCK")
EXPORTER_CPU, PRODUCER_CPU = 0, 1
OM_HEADERS = {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
              "Accept-Encoding": "gzip"}

USERSPACE = f"""programs:
  - name: opensnoop
    options: {{comm: {COMM}}}
    metrics:
      counters:
        - name: eunomia_file_open_counter
          max_series: {{limit}}
          labels:
            - name: pid
            - name: comm
            - name: filename
              from: fname
"""
IN_KERNEL = f"""programs:
  - name: opensnoop
    options: {{comm: {COMM}, count_opens: true, emit_events: false}}
    metrics:
      counters:
        - name: eunomia_opens_total
          map: opens
          labels:
            - name: comm
            - name: result
              from: err
              decoders: [errno]
"""
FILLER = r"""
import os, sys
prefix, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    try:
        os.close(os.open(prefix + str(i), os.O_RDONLY))
    except OSError:
        pass
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_producer(tmp: Path) -> Path:
    """bench/producer.c, under a traced name."""
    out = tmp / f"{COMM}prod"
    subprocess.run(["gcc", "-O2", str(ROOT / "bench" / "producer.c"), "-o", str(out)], check=True)
    return out


class Exporter:
    def __init__(self, tmp: Path, config: str):
        self.port = free_port()
        path = tmp / "bench-exporter.yaml"
        path.write_text(config)
        self.proc = subprocess.Popen([*EXPORTER, "-c", str(path), "--listen", f"127.0.0.1:{self.port}"],
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"the exporter did not start: {line}{self.proc.stderr.read()}")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        os.sched_setaffinity(self.proc.pid, {EXPORTER_CPU})
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def get(self, headers: dict[str, str] | None = None) -> bytes:
        try:
            self.conn.request("GET", "/metrics", headers=headers or {})
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # an idle keep-alive is the first the server closes when clients crowd it: reconnect
            # once, as Prometheus' client does
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request("GET", "/metrics", headers=headers or {})
            resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/metrics answered {resp.status}")
        return body

    def metric(self, name: str) -> float:
        total = 0.0
        for fam in text_string_to_metric_families(self.get().decode()):
            total += sum(s.value for s in fam.samples if s.name == name)
        return total

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime

    def stop(self) -> None:
        self.conn.close()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)


class Load:
    """The producer opening one file at about `rate` opens per second."""

    def __init__(self, producer: Path, rate: int, target: Path):
        self.producer, self.rate, self.target = producer, rate, target
        self.opens = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        step = 0.05
        chunk = max(1, int(self.rate * step))
        next_at = time.monotonic()
        while not self._stop.is_set():
            subprocess.run([str(self.producer), str(chunk), str(self.target), str(PRODUCER_CPU)],
                           stdout=subprocess.DEVNULL, check=True)
            self.opens += chunk
            next_at += step
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def _workload(tmp: Path) -> tuple[Path, Path, Path]:
    """The producer, an interpreter under a traced name that fills series, and the file the producer opens."""
    producer = build_producer(tmp)
    filler = tmp / f"{COMM}fill"
    filler.symlink_to(os.path.realpath(sys.executable))
    target = tmp / "target"
    target.write_text("x")
    return producer, filler, target


def scrape_latency(series_counts: tuple[int, ...] = (1_000, 10_000, 100_000), rate: int = 20_000,
                   scrapes: int = 30) -> list[dict[str, float]]:
    """(a): p50/p99 of /metrics with that many series, events arriving at `rate`/s."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="pyeu-bench-") as tmp_text:
        tmp = Path(tmp_text)
        producer, filler, target = _workload(tmp)
        for n in series_counts:
            exp = Exporter(tmp, USERSPACE.replace("{limit}", str(n + 10_000)))
            try:
                subprocess.run([str(filler), "-c", FILLER, str(tmp / "name-"), str(n)], check=True)
                wait_until(lambda n=n, exp=exp: exp.metric("eunomia_exporter_series") >= n, 120, f"{n} series")
                with Load(producer, rate, target):
                    time.sleep(1)
                    # The first scrape in a format learns each series' line from the library (about what
                    # every scrape cost before); Prometheus then keeps asking for that format.
                    start = time.perf_counter()
                    exp.get(OM_HEADERS)
                    first = time.perf_counter() - start
                    times, size = [], 0
                    for _ in range(scrapes):
                        start = time.perf_counter()
                        size = len(exp.get(OM_HEADERS))
                        times.append(time.perf_counter() - start)
                    series = exp.metric("eunomia_exporter_series")
                    lost = exp.metric("eunomia_exporter_events_lost_total")
                rows.append({"series": series, "p50_ms": statistics.median(times) * 1e3,
                             "p99_ms": percentile(times, 99) * 1e3, "max_ms": max(times) * 1e3,
                             "first_ms": first * 1e3,
                             "gzip_kib": size / 1024, "scrapes": scrapes, "lost": lost})
            finally:
                exp.stop()
    return rows


def cpu_at_rate(rate: int = 100_000, seconds: float = 10.0) -> list[dict[str, float | str]]:
    """(b): the exporter's CPU while the producer opens `rate` files a second."""
    rows: list[dict[str, float | str]] = []
    with tempfile.TemporaryDirectory(prefix="pyeu-bench-") as tmp_text:
        tmp = Path(tmp_text)
        producer = build_producer(tmp)
        target = tmp / "target"
        target.write_text("x")
        for mode, config in (("userspace counter (events)", USERSPACE.replace("{limit}", "10000")),
                             ("in-kernel map (opens)", IN_KERNEL)):
            exp = Exporter(tmp, config)
            try:
                time.sleep(1)
                cpu0, wall0 = exp.cpu_seconds(), time.monotonic()
                with Load(producer, rate, target) as load:
                    time.sleep(seconds)
                time.sleep(0.5)  # let the last batch drain
                cpu, wall = exp.cpu_seconds() - cpu0, time.monotonic() - wall0
                received = exp.metric("eunomia_exporter_events_received_total")
                lost = exp.metric("eunomia_exporter_events_lost_total")
                bpf_s = exp.metric("eunomia_exporter_bpf_run_time_seconds_total")
                runs = exp.metric("eunomia_exporter_bpf_run_count_total")
                rows.append({"mode": mode, "opens_per_s": load.opens / seconds, "cpu_percent": 100 * cpu / wall,
                             "us_per_open": 1e6 * cpu / max(1, load.opens), "received": received, "lost": lost,
                             "bpf_ns_per_run": 1e9 * bpf_s / max(1.0, runs)})
            finally:
                exp.stop()
    return rows


class Crowd:
    """Other clients of the exporter, on a thread of their own: `normal`
    ones scrape /metrics once a second over keep-alive, `slow` ones hold a
    partial request, send one more byte a second, and reconnect when closed."""

    def __init__(self, port: int, normal: int = 0, slow: int = 0):
        self.port, self.normal, self.slow = port, normal, slow
        self.reconnects = 0
        self.failed = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._scrapers, daemon=True),
                         threading.Thread(target=self._slow, daemon=True)]

    def _connect_slow(self) -> socket.socket | None:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            return s
        except OSError:
            return None

    def _slow(self) -> None:
        socks = [self._connect_slow() for _ in range(self.slow)]
        while not self._stop.wait(1.0):
            for i, s in enumerate(socks):
                try:
                    if s is None:
                        raise OSError
                    s.sendall(b"a")
                except OSError:
                    if s is not None:
                        s.close()
                    socks[i] = self._connect_slow()
                    self.reconnects += 1
        for s in socks:
            if s is not None:
                s.close()

    def _scrapers(self) -> None:
        if not self.normal:
            return
        conns = [http.client.HTTPConnection("127.0.0.1", self.port, timeout=10) for _ in range(self.normal)]
        while not self._stop.is_set():
            start = time.monotonic()
            for i, c in enumerate(conns):
                try:
                    c.request("GET", "/metrics", headers=OM_HEADERS)
                    c.getresponse().read()
                except (OSError, http.client.HTTPException):
                    self.failed += 1
                    c.close()
                    conns[i] = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if self._stop.is_set():
                    break
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - start)))
        for c in conns:
            c.close()

    def __enter__(self) -> Crowd:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def client_load(series: int = 10_000, rate: int = 20_000, scrapes: int = 30) -> list[dict[str, float | str]]:
    """(c): one scraper's /metrics latency beside other clients."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))  # 1,000 sockets of our own
    rows: list[dict[str, float | str]] = []
    with tempfile.TemporaryDirectory(prefix="pyeu-bench-") as tmp_text:
        tmp = Path(tmp_text)
        producer, filler, target = _workload(tmp)
        exp = Exporter(tmp, USERSPACE.replace("{limit}", str(series + 10_000)))
        try:
            subprocess.run([str(filler), "-c", FILLER, str(tmp / "name-"), str(series)], check=True)
            wait_until(lambda: exp.metric("eunomia_exporter_series") >= series, 120, f"{series} series")
            with Load(producer, rate, target):
                for name, normal, slow in (("none", 0, 0), ("50 scraping once a second", 50, 0),
                                           ("1,000 slow (partial requests, reconnecting)", 0, 1000)):
                    with Crowd(exp.port, normal, slow) as crowd:
                        time.sleep(3)
                        exp.get(OM_HEADERS)  # the format's first scrape fills its cache (see table (a))
                        times, failed = [], 0
                        for _ in range(scrapes):
                            start = time.perf_counter()
                            try:
                                fresh = http.client.HTTPConnection("127.0.0.1", exp.port, timeout=10)
                                fresh.request("GET", "/metrics", headers=OM_HEADERS)
                                ok = fresh.getresponse().read() != b""
                                fresh.close()
                            except (OSError, http.client.HTTPException):
                                ok = False
                            times.append(time.perf_counter() - start)
                            failed += not ok
                            time.sleep(0.1)
                        threads = len(os.listdir(f"/proc/{exp.proc.pid}/task"))
                        rss = int(next(line.split()[1] for line in Path(f"/proc/{exp.proc.pid}/status").read_text()
                                       .splitlines() if line.startswith("VmRSS:")))
                    rows.append({"clients": name, "p50_ms": statistics.median(times) * 1e3,
                                 "p99_ms": percentile(times, 99) * 1e3, "max_ms": max(times) * 1e3,
                                 "failed": failed, "scrapes": scrapes, "threads": threads, "rss_mib": rss / 1024,
                                 "others_failed": crowd.failed, "reconnects": crowd.reconnects})
        finally:
            exp.stop()
    return rows


def markdown(quick: bool = False, which: str = "all") -> str:
    """Both measurements as markdown tables (for BENCHMARKS.md); `quick`
    takes fewer scrapes and shorter CPU windows."""
    scrapes, seconds = (8, 3.0) if quick else (30, 10.0)
    out = [f"eunomia-exporter on {os.cpu_count()} CPUs, kernel {os.uname().release}, "
           f"Python {sys.version.split()[0]}; producer on CPU {PRODUCER_CPU}, exporter on CPU {EXPORTER_CPU}.\n"]
    if which in ("all", "scrape"):
        out += ["### /metrics latency while events arrive (20k opens/s; OpenMetrics + gzip, as Prometheus asks)\n",
                "| series | p50 ms | p99 ms | max ms | first scrape ms | body (gzip) KiB | scrapes | events lost |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in scrape_latency(scrapes=scrapes):
            out.append(f"| {r['series']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | "
                       f"{r['first_ms']:.1f} | "
                       f"{r['gzip_kib']:,.0f} | {r['scrapes']:.0f} | {r['lost']:,.0f} |")
        out.append("")
    if which in ("all", "cpu"):
        for rate in (20_000, 100_000):
            out += [f"### Exporter CPU at about {rate:,} opens/s ({seconds:.0f} s)\n",
                    "| aggregation | opens/s | exporter CPU % | µs CPU per open | events received | events lost "
                    "| BPF ns per run |",
                    "|---|---:|---:|---:|---:|---:|---:|"]
            for r in cpu_at_rate(rate, seconds):
                out.append(f"| {r['mode']} | {r['opens_per_s']:,.0f} | {r['cpu_percent']:.1f} | "
                           f"{r['us_per_open']:.2f} | {r['received']:,.0f} | {r['lost']:,.0f} | "
                           f"{r['bpf_ns_per_run']:.0f} |")
            out.append("")
    if which in ("all", "clients"):
        out += ["### /metrics latency beside other clients (10k series, 20k opens/s; a new connection per scrape)\n",
                "| other clients | p50 ms | p99 ms | max ms | failed | scrapes | exporter threads | RSS MiB "
                "| others' failed scrapes | slow reconnects |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in client_load(scrapes=scrapes):
            out.append(f"| {r['clients']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | "
                       f"{r['failed']} | {r['scrapes']} | {r['threads']} | {r['rss_mib']:.1f} | "
                       f"{r['others_failed']} | {r['reconnects']:,} |")
        out.append("")
    return "\n".join(out) + "\n"


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("exporter_bench: needs root (it loads BPF programs)")
    if shutil.which("gcc") is None:
        sys.exit("exporter_bench: needs gcc for bench/producer.c (apt-get install gcc)")
    args = [a for a in sys.argv[1:] if a != "--quick"]
    print(markdown(quick="--quick" in sys.argv[1:], which=args[0] if args else "all"), end="")


if __name__ == "__main__":
    main()
