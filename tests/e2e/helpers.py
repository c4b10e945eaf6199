"""Running the real commands against the real kernel, for end-to-end tests."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT / "tests" / "fixtures" / "upstream"


def command(name: str) -> list[str]:
    """How to start one of our console scripts with the test's interpreter."""
    module = {"ecli": "pyeunomia.cli.ecli", "ecc": "pyeunomia.cli.ecc",
              "opensnoop": "pyeunomia.cli.opensnoop",
              "eunomia-exporter": "pyeunomia.cli.exporter"}[name]
    return [sys.executable, "-m", module]


def run(name: str, *args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(name) + list(args), capture_output=True, text=True, timeout=timeout, **kw)


STARTED: list[subprocess.Popen[bytes]] = []  # every Running's process, for stop_leftovers


def stop_leftovers() -> list[str]:
    """SIGKILL the process group of every Running still alive (a test that
    failed before its stop: left running, it keeps its programs loaded and
    its CPU, and every later leak check would fail); their command lines."""
    left = []
    for proc in STARTED:
        if proc.poll() is None:
            left.append(" ".join(map(str, proc.args))[:200])  # type: ignore[arg-type]
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    STARTED.clear()
    return left


class Running:
    """A command running in the background, its stdout lines collected."""

    def __init__(self, argv: list[str], ready_text: str | None, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     start_new_session=True)
        STARTED.append(self.proc)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        self._ready = threading.Event()
        self._ready_text = ready_text
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        if ready_text is not None and not self._ready.wait(30):
            self.stop()
            raise AssertionError(f"never became ready; stderr: {''.join(self.stderr_lines)}")

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "surrogateescape"))
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.stderr_lines.append(line)
            if self._ready_text and self._ready_text in line:
                self._ready.set()
        self._ready.set()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10) -> list[str]:
        """Lines up to and including the first one matching `predicate`."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching line in {timeout}s; saw {seen[-20:]}; stderr {self.stderr_lines}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"output ended; saw {seen[-20:]}; stderr {self.stderr_lines}")
            seen.append(line)
            if predicate(line):
                return seen

    def json_events(self, predicate: Callable[[dict[str, Any]], bool], count: int = 1,
                    timeout: float = 10) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def match(line: str) -> bool:
            event = json.loads(line)
            if predicate(event):
                found.append(event)
            return len(found) >= count
        self.wait_for(match, timeout)
        return found

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError("did not stop on its signal") from None

    def rest(self) -> list[str]:
        out = []
        while True:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                return out
            if line is None:
                return out
            out.append(line)


@contextmanager
def running(name: str, *args: str, ready: str | None = "attached") -> Iterator[Running]:
    r = Running(command(name) + list(args), ready)
    try:
        yield r
    finally:
        if r.proc.poll() is None:
            r.stop()


def unique_executable(tmp: Path, stem: str = "pyeu") -> Path:
    """A copy of /bin/true under a name no other process on the machine has."""
    name = f"{stem}{os.getpid() % 10000}{int(time.time() * 1000) % 100000}"[:15]
    path = tmp / name
    shutil.copy("/bin/true", path)
    path.chmod(0o755)
    return path


def compile_bpf(source: str, tmp: Path, name: str = "prog") -> Path:
    """A BPF object from C source with plain clang (no ecc), for tests that
    need an object the compiler would refuse to produce or that predate it."""
    src = tmp / f"{name}.bpf.c"
    src.write_text(source)
    obj = tmp / f"{name}.bpf.o"
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    multiarch = f"/usr/include/{os.uname().machine}-linux-gnu"  # asm/types.h for linux/bpf.h
    subprocess.run(["clang", "-target", "bpf", "-g", "-O2", f"-D__TARGET_ARCH_{arch}", "-I", multiarch,
                    "-c", str(src), "-o", str(obj)],
                   check=True, capture_output=True)
    return obj


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pyeu-test-"))
