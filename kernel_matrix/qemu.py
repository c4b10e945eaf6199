"""Booting one guest under qemu (TCG) and watching it to the end.

The console (kernel messages, the runner's progress) goes to one file and the
results port to another. The guest is killed, never waited for forever: if it
has not reported its boot in `boot_timeout`, if a check runs past its own
timeout plus a margin, or if the whole guest exceeds its budget. qemu dies
with the harness in every case (the `finally`, and PR_SET_PDEATHSIG for
SIGKILL).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import die_with_parent, stop
from .results import parse_records

CPU = "qemu64,-cx16"  # Debian 12's qemu 7.2 double-faults 6.12 with the default model's cmpxchg16b
# Warnings (and stack dumps) reach the serial log: a stuck guest says where.
CMDLINE = "console=ttyS0 panic=-1 rdinit=/init quiet lsm=lockdown,capability,yama,bpf loglevel=5"
# One host thread runs both vCPUs in turn. With a thread per vCPU, a guest that
# patches its own code while the other vCPU runs through it (turning a
# tracepoint's static key on: attaching to sys_enter_* makes 5.10 rewrite
# syscall_trace_enter) left both spinning on the patched NOP in 3 runs of 8,
# "soft lockup ... RIP: syscall_trace_enter+0xed", a QEMU TCG artefact.
ACCEL = "tcg,thread=single"
CHECK_MARGIN = 40.0  # beyond a check's own timeout (which the guest enforces) before the host gives up
IDLE_LIMIT = 60.0  # silence allowed between checks (the runner only prints and starts the next one there)


@dataclass
class Boot:
    label: str
    vmlinuz: Path
    initrd: Path
    console: Path
    results: Path
    check_timeouts: Mapping[str, float]
    memory_mb: int = 1536
    cpus: int = 2
    boot_timeout: float = 180.0


@dataclass
class Outcome:
    records: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""  # why the guest ended early, if it did
    seconds: float = 0.0
    boot_seconds: float | None = None


def command(boot: Boot) -> list[str]:
    return ["qemu-system-x86_64", "-accel", ACCEL, "-cpu", CPU, "-m", str(boot.memory_mb), "-smp", str(boot.cpus),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-nic", "none",
            "-kernel", str(boot.vmlinuz), "-initrd", str(boot.initrd),
            "-append", f"{CMDLINE} kmx.kernel={boot.label}",
            "-serial", f"file:{boot.console}", "-serial", f"file:{boot.results}"]


def last_console_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


class Watch:
    """The deadline logic, apart from qemu so it can be tested on records alone."""

    def __init__(self, boot_timeout: float, check_timeouts: Mapping[str, float], started: float) -> None:
        self.boot_timeout = boot_timeout
        self.check_timeouts = check_timeouts
        self.started = started
        self.budget = boot_timeout + sum(t + CHECK_MARGIN for t in check_timeouts.values()) + IDLE_LIMIT
        self.booted_at: float | None = None
        self.check: str | None = None
        self.check_since = 0.0
        self.last_record = started
        self.done = False
        self.seen = 0

    def feed(self, records: Sequence[Mapping[str, Any]], now: float) -> None:
        if len(records) > self.seen:
            self.last_record = now
        for r in records[self.seen:]:
            event = r.get("event")
            if event == "boot":
                self.booted_at = now
            elif event == "start":
                self.check, self.check_since = str(r.get("check")), now
            elif event == "result":
                self.check = None
            elif event == "done":
                self.done = True
        self.seen = len(records)

    def overdue(self, now: float) -> str:
        """Why to give up on the guest now, or ''."""
        if now - self.started > self.budget:
            return f"guest still running after its whole budget of {self.budget:g} s"
        if self.booted_at is None:
            if now - self.started > self.boot_timeout:
                return f"no report from the guest {self.boot_timeout:g} s after starting qemu"
            return ""
        if self.check is not None:
            limit = self.check_timeouts.get(self.check, 60.0) + CHECK_MARGIN
            if now - self.check_since > limit:
                return f"guest stuck for {limit:g} s in check {self.check}"
        elif now - self.last_record > IDLE_LIMIT:
            what = "reported everything but did not power off" if self.done else "silent between checks"
            return f"guest {what} for {IDLE_LIMIT:g} s"
        return ""


def run_guest(boot: Boot, progress: Callable[[dict[str, Any]], None] | None = None,
              argv: Sequence[str] | None = None) -> Outcome:
    """Boot, stream records to `progress`, and return when qemu has exited."""
    boot.results.write_bytes(b"")
    started = time.monotonic()
    watch = Watch(boot.boot_timeout, boot.check_timeouts, started)
    outcome = Outcome()
    with open(boot.console.with_suffix(".qemu-stderr"), "wb") as err:
        proc = subprocess.Popen(list(argv or command(boot)), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True, preexec_fn=die_with_parent)
    try:
        while True:
            exited = proc.poll() is not None
            now = time.monotonic()
            records = parse_records(boot.results.read_text(errors="replace"))
            if progress is not None:
                for r in records[watch.seen:]:
                    progress(r)
            if watch.booted_at is None and any(r.get("event") == "boot" for r in records):
                outcome.boot_seconds = round(now - started, 1)
            watch.feed(records, now)
            outcome.records = records
            if exited:
                if not watch.done:
                    outcome.problem = (f"guest ended (qemu exit {proc.returncode}) before finishing; last console "
                                       f"line: {last_console_line(boot.console)}")
                break
            problem = watch.overdue(now)
            if problem:
                outcome.problem = f"{problem}; last console line: {last_console_line(boot.console)}"
                break
            time.sleep(0.25)
    finally:
        stop(proc, grace=5)
        outcome.seconds = round(time.monotonic() - started, 1)
    return outcome
