"""For the exporter's end-to-end tests: a real exporter process on a free
port, a child process that opens files when told to, and scrapes parsed with
prometheus_client's own parser."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ..e2e.helpers import Running, command

READY = "listening on"
OPENER = r"""
import os, sys
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "open":          # open PATH N [MODE]: open(O_RDONLY) N times
        path, n = cmd[1], int(cmd[2])
        flags = os.O_RDONLY | (os.O_CREAT if len(cmd) > 3 else 0)
        mode = int(cmd[3]) if len(cmd) > 3 else 0
        for _ in range(n):
            try:
                os.close(os.open(path, flags, mode))
            except OSError:
                pass
    elif cmd[0] == "many":        # many PREFIX START COUNT: open PREFIX<i>, which do not exist
        prefix, start, count = cmd[1], int(cmd[2]), int(cmd[3])
        for i in range(start, start + count):
            try:
                os.close(os.open(prefix + str(i), os.O_RDONLY))
            except OSError:
                pass
    print("done", flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Opener:
    """A process with a name no other has, that opens files when told to."""

    def __init__(self, tmp: Path, tag: str = "x"):
        self.name = f"pyeu{tag}{os.getpid() % 1000}{int(time.monotonic() * 1000) % 10000}"[:15]
        link = tmp / self.name
        link.symlink_to(os.path.realpath(sys.executable))
        self.proc = subprocess.Popen([str(link), "-c", OPENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.pid = self.proc.pid
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def do(self, *words: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        assert self._line() == "done"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


class Exporter:
    """eunomia-exporter running with `config` (YAML text) in `tmp`."""

    def __init__(self, tmp: Path, config: str, *extra: str, port: int | None = None, name: str = "config.yaml",
                 tls: ssl.SSLContext | None = None, headers: dict[str, str] | None = None,
                 prefix: tuple[str, ...] = ()):
        self.tls = tls  # scrape over HTTPS with this client context
        self.headers = headers or {}  # sent with every request (basic auth)
        self.port = port or free_port()
        self.config = tmp / name
        self.config.write_text(config)
        argv = [*prefix, *command("eunomia-exporter"), "-c", str(self.config), "--listen", f"127.0.0.1:{self.port}",
                *extra]
        self.running = Running(argv, READY)

    @property
    def pid(self) -> int:
        return self.running.proc.pid

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        conn: http.client.HTTPConnection
        if self.tls is not None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.tls)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def post(self, path: str, doc: Any, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, _, data = self.get(path, headers, "POST", json.dumps(doc).encode() if not isinstance(doc, bytes)
                                   else doc)
        return status, json.loads(data)

    def scrape(self) -> str:
        status, _, data = self.get("/metrics")
        assert status == 200
        return data.decode()

    def samples(self, sample_name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every sample of that name, by its sorted labels."""
        out = {}
        for fam in text_string_to_metric_families(self.scrape()):
            for s in fam.samples:
                if s.name == sample_name:
                    out[tuple(sorted(s.labels.items()))] = s.value
        return out

    def value(self, sample_name: str, **labels: str) -> float | None:
        want = tuple(sorted(labels.items()))
        return self.samples(sample_name).get(want)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; stderr: {self.running.stderr_lines}")
            time.sleep(0.1)

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def cpu_seconds(self) -> float:
        """User and system CPU time the exporter has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self, sig: int | None = None) -> int:
        import signal
        return self.running.stop(sig if sig is not None else signal.SIGINT)

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running.proc.poll() is None:
            self.running.stop()
