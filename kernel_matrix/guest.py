"""The guest's side: run every check of the plan, one after the other, and
report each on the results port (the second serial line, so kernel messages
on the console cannot split a result).

Runs as `python3 -m kernel_matrix.guest PLAN` from the guest's /init, with the
guest's Debian python3 and the standard library only. Each check starts the
product's command as a user would, waits for it to say it is attached, causes
the activity, and stops it the moment every expected output has been seen (or
at its timeout): a check costs little more than the command's start-up.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from typing import Any, TextIO

from . import matrix
from .checks import CONTEXT, METRICS, STDERR, STDOUT, TRACE, Ctx, Progress

RESULTS_PORT = "/dev/ttyS1"
MARK = "KMX "
TRACE_PIPE = "/sys/kernel/tracing/trace_pipe"
STOP_GRACE = 10.0  # seconds a command gets to exit after SIGINT
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root", "LANG": "C.UTF-8",
       "TERM": "dumb"}

Item = tuple[str, str]  # (stream, line)


class Reporter:
    """Writes one `KMX {json}` line per record to the results port."""

    def __init__(self, path: str = RESULTS_PORT) -> None:
        self.out: TextIO
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
            tty.setraw(fd, termios.TCSANOW)
            self.out = os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace")
        except OSError:
            self.out = sys.stdout

    def emit(self, record: dict[str, Any]) -> None:
        self.out.write(MARK + json.dumps(record, ensure_ascii=True) + "\n")
        self.out.flush()


class TraceReader:
    """One reader of trace_pipe for the whole run (reading consumes it), handing
    lines to whichever check is listening."""

    def __init__(self) -> None:
        self.target: queue.Queue[Item] | None = None
        self.ok = os.path.exists(TRACE_PIPE)
        if self.ok:
            threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        with open(TRACE_PIPE, "rb") as pipe:
            for raw in pipe:
                target = self.target
                if target is not None:
                    target.put((TRACE, raw.decode("utf-8", "replace").rstrip("\n")))


class Command:
    """The product's command, its output lines in `items`, its stderr kept."""

    def __init__(self, argv: list[str], ready: str, items: queue.Queue[Item]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                                     start_new_session=True)
        self.ready_text = ready
        self.ready = threading.Event()
        self.stderr: list[str] = []
        self.items = items
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()

    def _out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.items.put((STDOUT, raw.decode("utf-8", "replace").rstrip("\n")))

    def _err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr.append(line)
            self.items.put((STDERR, line))
            if self.ready_text in line:
                self.ready.set()
        self.ready.set()  # ended: whoever waits looks at poll()

    def stop(self) -> str:
        """SIGINT as Ctrl-C would; SIGKILL for the group if that does not work.
        Returns a complaint, or ''."""
        if self.proc.poll() is not None:
            return ""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(STOP_GRACE)
            return ""
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return f"did not stop within {STOP_GRACE:g} s of SIGINT"


def scrape(port: int, items: queue.Queue[Item], stop: threading.Event) -> None:
    """Fetch /metrics every 0.3 s and offer its lines, until told to stop.
    Each request carries the basic-auth credentials of matrix.WEB_CONFIG
    (user and password `kmx`), which an exporter without basic auth ignores."""
    import urllib.request  # here: its import costs most of a second under TCG, and one check needs it

    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": "Basic a214OmtteA=="})  # base64 of kmx:kmx
    while not stop.is_set():
        try:
            with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310 - an http:// URL of ours
                for line in r.read().decode("utf-8", "replace").splitlines():
                    items.put((METRICS, line))
        except OSError:
            pass
        stop.wait(0.3)


SAID_MAX = 500  # characters of a program's message kept for the table


def one_line(lines: list[str]) -> str:
    """A message for the table: the product's own error line (and the line
    after it, which usually says why), or else its last line."""
    text = [line.strip() for line in lines if line.strip()]
    if not text:
        return "no message"
    at = next((i for i, line in enumerate(text) if "error:" in line), len(text) - 1)
    said = " ".join(text[at:at + 2])
    if len(said) > SAID_MAX:  # marked, not cut mid-word unseen (6.12's fentry refusal is 306 characters)
        said = said[:SAID_MAX - 3] + "..."
    return said if len(text) == 1 else f"{said} ({len(text)} lines on stderr)"


def run_check(program: matrix.Program, index: int, tracer: TraceReader) -> dict[str, Any]:
    """Start, wait for attachment, trigger, watch; always stop and clean up."""
    started = time.monotonic()
    ctx: Ctx = {"token": os.urandom(3).hex(), "port": 20000 + index, "pkg": program.package_file, "cleanup": [],
                "harness_pid": os.getpid()}
    argv = [arg.format_map(ctx) for arg in program.run]
    stop_scrape = threading.Event()
    holder: list[Command] = []
    try:
        outcome = _attempt(program, argv, ctx, tracer, holder, stop_scrape, started + program.timeout)
    finally:
        tracer.target = None
        stop_scrape.set()
        complaint = holder[0].stop() if holder else ""
        for fn in reversed(ctx["cleanup"]):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - cleanup must not hide the result
                print(f"kmx: cleanup of {program.name}: {e!r}", flush=True)
    if complaint and outcome["status"] == "ran":
        outcome = {"status": "failed", "reason": complaint}
    if holder and holder[0].proc.returncode is not None:
        outcome.setdefault("rc", holder[0].proc.returncode)
    return {"check": program.name, "argv": argv, **outcome, "seconds": round(time.monotonic() - started, 2)}


def _attempt(program: matrix.Program, argv: list[str], ctx: Ctx, tracer: TraceReader, holder: list[Command],
             stop_scrape: threading.Event, deadline: float) -> dict[str, Any]:
    items: queue.Queue[Item] = queue.Queue()
    progress = Progress(program.expect)
    started = time.monotonic()
    cmd = Command(argv, program.ready, items)
    holder.append(cmd)
    while not cmd.ready.wait(0.1) and time.monotonic() < deadline:
        pass
    if not cmd.ready.is_set():
        return {"status": "failed", "reason": f"not attached after {program.timeout:g} s", "stderr": cmd.stderr[-5:]}
    if cmd.proc.poll() is not None or not any(program.ready in line for line in cmd.stderr):
        try:
            cmd.proc.wait(STOP_GRACE)  # its stderr has ended: it is exiting (stop() ends it if not)
        except subprocess.TimeoutExpired:
            pass
        lines = [line for line in cmd.stderr if line.strip()]
        return {"status": "refused", "reason": one_line(lines), "stderr_lines": len(lines), "stderr": cmd.stderr[-5:]}
    attach_s = round(time.monotonic() - started, 2)
    if TRACE in progress.streams():
        tracer.target = items
    if METRICS in progress.streams():
        threading.Thread(target=scrape, args=(ctx["port"], items, stop_scrape), daemon=True).start()
    try:
        program.trigger(ctx)
    except Exception as e:  # noqa: BLE001 - any failure of the activity is the check's result
        return {"status": "failed", "reason": f"trigger {program.trigger.__name__} failed: {e!r}",
                "attach_s": attach_s, "stderr": cmd.stderr[-5:]}
    progress.feed(CONTEXT, "", ctx)
    saw: list[str] = []
    while not progress.done:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            stream, line = items.get(timeout=min(left, 0.5))
        except queue.Empty:
            if cmd.proc.poll() is not None and items.empty():
                break
            continue
        saw.append(f"{stream}: {line}"[:300])
        progress.feed(stream, line, ctx)
    if progress.done:
        return {"status": "ran", "attach_s": attach_s}
    ended = cmd.proc.poll() is not None
    missing = "; ".join(progress.missing(ctx))
    why = f"exited early ({one_line(cmd.stderr)})" if ended else f"not seen within {program.timeout:g} s"
    return {"status": "failed", "reason": f"{why}: {missing}", "attach_s": attach_s, "saw": saw[-8:],
            "stderr": cmd.stderr[-5:]}


def kernel_label() -> str:
    with open("/proc/cmdline") as f:
        for word in f.read().split():
            if word.startswith("kmx.kernel="):
                return word.split("=", 1)[1]
    return "?"


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        plan = json.load(f)
    reporter = Reporter()
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    reporter.emit({"event": "boot", "kernel": kernel_label(), "release": os.uname().release, "uptime": uptime})
    tracer = TraceReader()
    programs = matrix.by_name()
    for i, name in enumerate(plan["checks"]):
        reporter.emit({"event": "start", "check": name})
        print(f"kmx: {name} ...", flush=True)
        result = run_check(programs[name], i, tracer)
        print(f"kmx: {name}: {result['status']} {result.get('reason', '')}", flush=True)
        reporter.emit({"event": "result"} | result)
    reporter.emit({"event": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
