"""The catalogue's process tools on every kernel of the matrix: execsnoop,
exitsnoop, killsnoop, sigsnoop, threadsnoop.

Each row runs the built-in tool and one trigger below (standard library only:
the guest runs this module too); the trigger records what the tool must
report, as kernel_matrix/actions.py does. All their hooks are classic
tracepoints (syscalls/*, sched/sched_process_exit, signal/signal_generate,
task/task_newtask) present with the same fields on 5.10, 6.1 and 6.12.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import threading

from .actions import Ctx
from .checks import event
from .matrix import Program, row

_EXECUTABLE = 0o755


def _copy(src: str, name: str) -> str:
    """A copy of an executable under a unique name (its comm is unique too)."""
    path = f"/tmp/{name}"[:20]
    shutil.copy(src, path)
    os.chmod(path, _EXECUTABLE)
    return path


def exec_args(ctx: Ctx) -> None:
    """execve of a unique copy of /bin/true with two arguments."""
    path = _copy("/bin/true", f"kmxe{ctx['token']}")
    proc = subprocess.Popen([path, "kmx", ctx["token"]])
    proc.wait(30)
    ctx.update(pid=proc.pid, comm=os.path.basename(path)[:15], args=f"{path} kmx {ctx['token']}")


def exec_quoted(ctx: Ctx) -> None:
    """As exec_args, its arguments as execsnoop -q shows them: each in quotes."""
    path = _copy("/bin/true", f"kmxq{ctx['token']}")
    proc = subprocess.Popen([path, "kmxquoted", ctx["token"]])
    proc.wait(30)
    ctx.update(pid=proc.pid, comm=os.path.basename(path)[:15], args=f'"{path}" "kmxquoted" "{ctx["token"]}"')


def exec_missing(ctx: Ctx) -> None:
    """execve of a path that does not exist, in the harness itself: -ENOENT."""
    path = f"/tmp/kmx-noexec-{ctx['token']}"
    try:
        os.execv(path, [path, "kmx"])  # noqa: S606 - no such file: execve fails and returns
    except FileNotFoundError:
        pass
    ctx.update(pid=os.getpid(), args=f"{path} kmx", ret=-errno.ENOENT)


def exit_three(ctx: Ctx) -> None:
    """A unique copy of /bin/sh that exits with code 3 (wait status 3 << 8)."""
    path = _copy("/bin/sh", f"kmxx{ctx['token']}")
    proc = subprocess.Popen([path, "-c", "exit 3"])
    proc.wait(30)
    ctx.update(pid=proc.pid, comm=os.path.basename(path)[:15], status=3 << 8)


def kill_missing(ctx: Ctx) -> None:
    """kill(pid, SIGUSR2) for a pid above any pid_max: ESRCH."""
    tpid = 4_190_000 + int(ctx["token"], 16) % 4000
    try:
        os.kill(tpid, signal.SIGUSR2)
    except ProcessLookupError:
        pass
    ctx.update(pid=os.getpid(), tpid=tpid, sig=int(signal.SIGUSR2), ret=-errno.ESRCH)


def signal_child(ctx: Ctx) -> None:
    """SIGUSR1 to a unique copy of sleep: generated, delivered (it ends it)."""
    path = _copy("/bin/sleep", f"kmxs{ctx['token']}")
    proc = subprocess.Popen([path, "30"])
    os.kill(proc.pid, signal.SIGUSR1)
    proc.wait(30)
    ctx.update(pid=os.getpid(), tpid=proc.pid, tcomm=os.path.basename(path)[:15], sig=int(signal.SIGUSR1))


def new_thread(ctx: Ctx) -> None:
    """One thread started and joined by the harness itself."""
    tids: list[int] = []
    thread = threading.Thread(target=lambda: tids.append(threading.get_native_id()))
    thread.start()
    thread.join()
    ctx.update(pid=os.getpid(), tid=tids[0])


ROWS: tuple[Program, ...] = (
    row("tool/execsnoop", None, "ecli run -j execsnoop", exec_args,
        [event(pid="{pid}", comm="{comm}", args="{args}", ret=0, args_count=3)]),
    # -l's rolling hash and -q's quotes are verified only when set (rodata folds them away otherwise)
    row("tool/execsnoop-lq", None, """ecli run -j execsnoop -q -l 'kmxquoted" "'""", exec_quoted,
        [event(pid="{pid}", comm="{comm}", args="{args}", ret=0, args_count=3)]),
    row("tool/execsnoop-x", None, "ecli run -j execsnoop -x", exec_missing,
        [event(pid="{pid}", args="{args}", ret="{ret}", args_count=2)]),
    row("tool/exitsnoop", None, "ecli run -j exitsnoop -x", exit_three,
        [event(pid="{pid}", tid="{pid}", comm="{comm}", exit_code=3, sig=0, exit_status="{status}")]),
    row("tool/killsnoop", None, "ecli run -j killsnoop -x", kill_missing,
        [event(pid="{pid}", tpid="{tpid}", sig="{sig}", ret="{ret}", syscall=0)]),
    row("tool/sigsnoop", None, "ecli run -j sigsnoop", signal_child,
        [event(pid="{pid}", tpid="{tpid}", tcomm="{tcomm}", sig="{sig}", result=0, code=0)]),
    row("tool/sigsnoop-k", None, "ecli run -j sigsnoop -k -x", kill_missing,
        [event(pid="{pid}", tpid="{tpid}", sig="{sig}", ret="{ret}", result=-1)]),
    row("tool/threadsnoop", None, "ecli run -j threadsnoop", new_thread,
        [event(pid="{pid}", tid="{tid}", creator_tid="{pid}")]),
)
