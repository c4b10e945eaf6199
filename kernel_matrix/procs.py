"""Child processes and temporary trees that cannot outlive the run.

Every child gets PR_SET_PDEATHSIG, so even a SIGKILLed harness takes its
qemu and mmdebstrap with it; an interrupted `run` stops its child (SIGTERM,
then SIGKILL) before the exception goes on. Temporary trees are removed with
any mounts inside them (mmdebstrap mounts /proc and /dev in its chroot)
unmounted first, so removal never reaches into the host's /dev.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
MNT_DETACH = 2


class CommandError(Exception):
    """A command failed; the message is one line with its stderr's last line."""


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGKILL to the child when we die."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM to the child's process group, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def run(argv: Sequence[str], *, capture: bool = False, quiet: bool = False, cwd: Path | None = None,
        env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    """Run a command to completion; its stdout when `capture`. `quiet` keeps
    its output to ourselves unless it fails."""
    out = subprocess.PIPE if (capture or quiet) else None
    proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.PIPE if quiet or capture else None,
                            cwd=cwd, env=env, start_new_session=True, preexec_fn=die_with_parent)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        stop(proc)
        raise
    if proc.returncode != 0:
        text = (stderr or b"").decode("utf-8", "replace").strip().splitlines()
        last = next((line for line in reversed(text) if line.strip() and not line.startswith("W:")), "")
        raise CommandError(f"{argv[0]} exited with {proc.returncode}: {last or 'no message'}")
    return (stdout or b"").decode("utf-8", "replace") if capture else ""


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix) or point == prefix.rstrip("/"):
                found.append(point)
    return found


def remove_tree(path: Path) -> None:
    """rm -rf that first detaches every mount below `path`, deepest first."""
    if not path.exists() and not path.is_symlink():
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for point in sorted(mounts_under(path), key=len, reverse=True):
        libc.umount2(point.encode(), MNT_DETACH)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def on_terminate(handler: Callable[[], None]) -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C: through the `finally`s."""
    def raise_exit(signum: int, _frame: object) -> None:
        handler()
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_exit)


def log(message: str) -> None:
    print(f"kernel-matrix: {message}", file=sys.stderr, flush=True)
