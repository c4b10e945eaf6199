"""The catalogue's process tools (execsnoop, exitsnoop, killsnoop, sigsnoop,
threadsnoop) against real processes: exact pids, arguments, exit
codes, signals and results in their -j events, and one filter or more each
(events of another process, or of the kind filtered out, do not appear
before the ones wanted).

Bench loads (events per second generators, one per tool):
- execsnoop: a loop of fork+execve of /bin/true with 4 arguments (and one
  execve of a missing path per 10 for -x).
- exitsnoop: a loop of fork + _exit(3) (no exec), every 10th killed by SIGKILL.
- killsnoop: kill(getpid() of a sleeping child, 0) in a tight loop (signal 0:
  checks only, no delivery), plus kill(missing pid) for -x.
- sigsnoop: the same kill(child, 0) loop is invisible (signal 0 is never
  generated): use kill(child, SIGWINCH) (ignored by default) in a loop.
- threadsnoop: a process that starts and joins pthreads in a loop.

Measured once beside Debian's libbpf-tools (2026-12-02, the shared 2-core VM
at load 9, so no cost figures): 2,000 fork+exec of one binary: execsnoop
2,000, theirs 2,000; 2,000 fork+_exit(3) with -x: exitsnoop 2,000, theirs
1,972 (perf buffer); 20,000 kill(self, SIGWINCH) with -s 28: sigsnoop 20,000,
theirs 19,993; 100,000 kill(self, 0): killsnoop 100,000, theirs (sigsnoop -k)
100,000; 2,000 Python threads: threadsnoop 2,000 (no C peer in Debian).
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from ..helpers import Running, running, temp_dir
from .cgroups import new_cgroup

pytestmark = pytest.mark.usefixtures("kernel")

Event = dict[str, Any]
MISSING_PID = 4_190_000 + os.getpid() % 4000  # above any pid_max (4194304): kill() fails with ESRCH


def unique(stem: str) -> str:
    return f"{stem}{os.getpid() % 1000}{time.monotonic_ns() // 1000 % 100000}"[:15]


def copy_exe(src: str, stem: str) -> Path:
    """A copy of an executable under a unique name: its comm is unique too."""
    folder = temp_dir()
    folder.chmod(0o755)  # mkdtemp's 0700 would keep a child running as nobody out
    path = folder / unique(stem)
    shutil.copy(src, path)
    path.chmod(0o755)
    return path


def py_child(code: str, stem: str, **kw: Any) -> subprocess.Popen[str]:
    """A Python under a unique name (a symlink: the comm is the link's name)
    running `code`, which reads a line from stdin before it acts."""
    link = temp_dir() / unique(stem)
    link.symlink_to(os.path.realpath(sys.executable))
    return subprocess.Popen([str(link), "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kw)


def go(child: subprocess.Popen[str]) -> str:
    """Tell a py_child to act; its first line of output."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    return child.stdout.readline().strip()


def until(tool: Running, want: Callable[[Event], bool], timeout: float = 10) -> list[Event]:
    """Every event up to and including the first one `want` accepts."""
    return [json.loads(line) for line in tool.wait_for(lambda line: want(json.loads(line)), timeout)]


def tool(name: str, *args: str) -> Any:
    return running("ecli", "run", "-j", name, *args)


CGROUP2 = Path("/sys/fs/cgroup/unified") if os.path.ismount("/sys/fs/cgroup/unified") else Path("/sys/fs/cgroup")


def cgroup() -> AbstractContextManager[Path]:
    return new_cgroup("pyeu-proc")


def signal_option(name: str) -> str:
    """-s takes a name through the `signal` converter; until it is in the engine, the number."""
    return name if importlib.util.find_spec("pyeunomia.converters") else str(int(signal.Signals[name]))


def into(path: Path) -> Callable[[], None]:
    """preexec_fn: the child moves itself into cgroup `path` before it execs."""
    return lambda: (path / "cgroup.procs").write_text("0")


# -- execsnoop ------------------------------------------------------------------

def test_execsnoop_pid_ppid_args_and_failed_only_with_x() -> None:
    exe = copy_exe("/bin/true", "pyeux")
    missing = str(temp_dir() / unique("pyeumiss"))
    with tool("execsnoop") as plain, tool("execsnoop", "-x") as fails:
        try:
            os.execv(missing, [missing, "never"])  # fails in this very process: ENOENT
        except FileNotFoundError:
            pass
        child = subprocess.Popen([str(exe), "alpha", "beta gamma"])
        child.wait()
        wanted = until(plain, lambda e: e["comm"] == exe.name)
        failed = until(fails, lambda e: e["args"].startswith(missing))[-1]
    ok = wanted[-1]
    assert not [e for e in wanted if e["args"].startswith(missing)]  # no failed exec without -x
    assert (ok["pid"], ok["ppid"], ok["uid"], ok["ret"]) == (child.pid, os.getpid(), 0, 0)
    assert ok["args"] == f"{exe} alpha beta gamma" and ok["args_count"] == 3 and ok["args_truncated"] == 0
    assert ok["args_size"] == len(ok["args"]) + 1 and ok["execveat"] == 0
    assert (failed["pid"], failed["ret"], failed["args"], failed["args_count"]) == \
        (os.getpid(), -errno.ENOENT, f"{missing} never", 2)


def test_execsnoop_max_args_uid_and_name_filters() -> None:
    root_exe, nobody_exe = copy_exe("/bin/true", "pyeur"), copy_exe("/bin/true", "pyeun")
    with tool("execsnoop", "-u", "65534", "--max-args", "2") as by_uid, \
            tool("execsnoop", "-n", nobody_exe.name[2:]) as by_name:
        subprocess.run([str(root_exe), "a"], check=True)
        nobody = subprocess.Popen([str(nobody_exe), "a", "b", "c"], user=65534, group=65534)
        nobody.wait()
        seen = until(by_uid, lambda e: e["comm"] == nobody_exe.name)
        named = until(by_name, lambda e: e["comm"] == nobody_exe.name)
    assert not [e for e in seen if e["uid"] != 65534]  # root's exec, before it, filtered out in the kernel
    event = seen[-1]
    assert (event["pid"], event["uid"], event["args"], event["args_count"], event["args_truncated"]) == \
        (nobody.pid, 65534, f"{nobody_exe} a", 2, 1)
    assert [e["comm"] for e in named] == [nobody_exe.name]  # -n: root_exe's exec did not match


def test_execsnoop_cgroup() -> None:
    inside, outside = copy_exe("/bin/true", "pyeuci"), copy_exe("/bin/true", "pyeuco")
    with cgroup() as path, tool("execsnoop", "-c", str(path)) as snoop:
        subprocess.run([str(outside)], check=True)
        child = subprocess.Popen([str(inside)], preexec_fn=into(path))
        child.wait()
        seen = until(snoop, lambda e: e["comm"] == inside.name)
    assert [e["pid"] for e in seen] == [child.pid]  # nothing outside the cgroup came before it


def test_execsnoop_quote_and_line() -> None:
    exe = copy_exe("/bin/true", "pyeuq")
    needle = f"{exe.name}-x tail"  # spans two arguments, as the command line shows them
    with tool("execsnoop", "-q") as quoted, tool("execsnoop", "-l", needle) as lined:
        subprocess.run([str(exe), "other", "tail"], check=True)  # its command line lacks the needle
        child = subprocess.Popen([str(exe), f"{exe.name}-x", "tail", 'say "hi"'])
        child.wait()
        seen = until(quoted, lambda e: e["pid"] == child.pid)
        matched = until(lined, lambda e: e["comm"] == exe.name)
    # -q: each argument in quotes (its own quotes as they are), joined by spaces
    assert seen[-1]["args"] == f'"{exe}" "{exe.name}-x" "tail" "say "hi""' and seen[-1]["args_count"] == 4
    assert [(e["pid"], e["args"]) for e in matched] == [(child.pid, f'{exe} {exe.name}-x tail say "hi"')]


def test_execsnoop_elapsed_and_uid_columns() -> None:
    """-t: libbpf-tools' TIME(s), seconds since the start (the runner's
    --elapsed); -U: the UID column, first, which is hidden without it."""
    exe = copy_exe("/bin/true", "pyeut")
    started = time.monotonic()
    with running("ecli", "run", "execsnoop", "-t", "-U", "-n", exe.name) as with_uid, \
            running("ecli", "run", "execsnoop", "-n", exe.name) as without:
        child = subprocess.Popen([str(exe), "a"], user=65534, group=65534)
        child.wait()
        lines = with_uid.wait_for(lambda line: exe.name in line)
        plain = without.wait_for(lambda line: exe.name in line)
        bound = time.monotonic() - started
    assert lines[0].split() == ["TIME(s)", "UID", "PCOMM", "PID", "PPID", "RET", "ARGS"]
    since, uid, comm, pid, ppid, ret, *args = lines[-1].split()
    assert (uid, comm, pid, ppid, ret, args) == ("65534", exe.name, str(child.pid), str(os.getpid()), "ok",
                                                 [str(exe), "a"])
    assert len(since.split(".")[1]) == 3 and 0 <= float(since) <= bound  # %-8.3f, since the tool began
    assert plain[0].split() == ["PCOMM", "PID", "PPID", "RET", "ARGS"]
    assert plain[-1].split()[:2] == [exe.name, str(child.pid)]


# -- exitsnoop -------------------------------------------------------------------

def test_exitsnoop_code_signal_and_failed_only() -> None:
    shell = copy_exe("/bin/sh", "pyeush")
    ok = copy_exe("/bin/true", "pyeuok")
    with tool("exitsnoop") as snoop, tool("exitsnoop", "-x") as failed:
        subprocess.run([str(ok)], check=True)
        three = subprocess.Popen([str(shell), "-c", "exit 3"])
        three.wait()
        sleeper = subprocess.Popen([str(shell), "-c", "read x"], stdin=subprocess.PIPE)
        time.sleep(0.1)
        sleeper.kill()
        sleeper.wait()
        events = until(snoop, lambda e: e["pid"] == sleeper.pid)
        only_failed = until(failed, lambda e: e["pid"] == sleeper.pid)
    by_pid = {e["pid"]: e for e in events}
    code3 = by_pid[three.pid]
    assert (code3["exit_code"], code3["sig"], code3["exit_status"], code3["ppid"]) == (3, 0, 3 << 8, os.getpid())
    assert code3["tid"] == code3["pid"] and 0 < code3["age"] == code3["exit_time"] - code3["start_time"]
    killed = by_pid[sleeper.pid]
    assert (killed["exit_code"], killed["sig"], killed["exit_status"], killed["comm"]) == (0, 9, 9, shell.name)
    assert any(e["comm"] == ok.name and e["exit_status"] == 0 for e in events)
    assert not [e for e in only_failed if e["comm"] == ok.name]  # -x: the clean exit is not there
    assert [e["exit_status"] for e in only_failed if e["comm"] == shell.name] == [3 << 8, 9]


THREADED = r"""
import os, sys, threading
sys.stdin.readline()
ids = []
t = threading.Thread(target=lambda: ids.append(threading.get_native_id()))
t.start(); t.join()
print(ids[0], flush=True)
os._exit(5)
"""


def test_exitsnoop_pid_and_threads() -> None:
    other = copy_exe("/bin/false", "pyeuot")
    child = py_child(THREADED, "pyeuth")
    with tool("exitsnoop", "-p", str(child.pid)) as by_pid, tool("exitsnoop", "-T") as threads:
        subprocess.run([str(other)])
        tid = int(go(child))
        child.wait()
        seen = until(by_pid, lambda e: e["tid"] == child.pid)
        every = until(threads, lambda e: e["tid"] == child.pid)
    # the process's exit alone: not its thread's, nor `other`'s, which came first
    assert [(e["pid"], e["tid"], e["exit_code"]) for e in seen] == [(child.pid, child.pid, 5)]
    mine = [(e["pid"], e["tid"], e["exit_code"]) for e in every if e["pid"] == child.pid]
    assert mine == [(child.pid, tid, 0), (child.pid, child.pid, 5)]  # -T: the thread's exit too



def test_exitsnoop_t_prints_the_time() -> None:
    """-t: libbpf-tools' exitsnoop TIME column, HH:MM:SS (the runner's -T;
    -T is exitsnoop's --threaded, as theirs)."""
    exe = copy_exe("/bin/false", "pyeutt")
    with running("ecli", "run", "exitsnoop", "-t") as snoop:
        before = time.time()
        child = subprocess.Popen([str(exe)])
        child.wait()
        lines = snoop.wait_for(lambda line: exe.name in line)
        after = time.time()
    assert lines[0].split()[:3] == ["TIME", "PCOMM", "PID"]
    stamp, comm, pid = lines[-1].split()[:3]
    assert (comm, pid) == (exe.name, str(child.pid))
    assert stamp in {time.strftime("%H:%M:%S", time.localtime(t)) for t in range(int(before), int(after) + 1)}


def test_exitsnoop_cgroup() -> None:
    inside, outside = copy_exe("/bin/false", "pyeuxi"), copy_exe("/bin/false", "pyeuxo")
    with cgroup() as path, tool("exitsnoop", "-c", str(path)) as snoop:
        subprocess.run([str(outside)])
        child = subprocess.Popen([str(inside)], preexec_fn=into(path))
        child.wait()
        seen = until(snoop, lambda e: e["comm"] == inside.name)
    assert [(e["pid"], e["exit_code"]) for e in seen] == [(child.pid, 1)]  # nothing outside the cgroup before it

# -- killsnoop ---------------------------------------------------------------------

def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(copy_exe("/bin/sleep", "pyeusl")), "30"])


def test_killsnoop_kill_tgkill_and_failed() -> None:
    target = sleeper()
    old = signal.signal(signal.SIGWINCH, signal.SIG_IGN)
    try:
        with tool("killsnoop") as snoop, tool("killsnoop", "-x") as failed:
            os.kill(target.pid, signal.SIGUSR1)
            signal.pthread_kill(threading.get_ident(), signal.SIGWINCH)  # tgkill(2) to this very thread
            try:
                os.kill(MISSING_PID, signal.SIGUSR2)
            except ProcessLookupError:
                pass
            events = until(snoop, lambda e: e["tpid"] == MISSING_PID)
            only_failed = until(failed, lambda e: e["tpid"] == MISSING_PID)
    finally:
        signal.signal(signal.SIGWINCH, old)
        target.kill()
        target.wait()
    mine = [(e["pid"], e["tid"], e["sig"], e["tpid"], e["ttid"], e["ret"], e["syscall"])
            for e in events if e["pid"] == os.getpid()]
    me, tid = os.getpid(), threading.get_native_id()
    assert mine == [(me, tid, 10, target.pid, 0, 0, 0), (me, tid, 28, me, tid, 0, 2),
                    (me, tid, 12, MISSING_PID, 0, -errno.ESRCH, 0)]
    assert [e["tpid"] for e in only_failed if e["pid"] == me] == [MISSING_PID]


def test_killsnoop_pid_and_signal_filters() -> None:
    target = sleeper()
    try:
        with tool("killsnoop", "-p", str(os.getpid()), "-s", "12") as snoop:
            other = subprocess.run(["/bin/kill", "-s", "USR2", str(target.pid)], check=True)
            os.kill(target.pid, signal.SIGUSR1)  # the wrong signal
            os.kill(target.pid, signal.SIGUSR2)
            seen = until(snoop, lambda e: e["tpid"] == target.pid)
    finally:
        target.kill()
        target.wait()
    assert other.returncode == 0
    assert [(e["pid"], e["sig"], e["tpid"], e["ret"]) for e in seen] == [(os.getpid(), 12, target.pid, 0)]


def test_killsnoop_kill_only_and_names() -> None:
    """-k: kill(2) only (tkill and tgkill are not even loaded); -n: the SIG
    column names the signal, which shows as a number without it (as theirs)."""
    me = str(os.getpid())
    with running("ecli", "run", "killsnoop", "-k", "-p", me) as kills, \
            running("ecli", "run", "killsnoop", "-n", "-p", me) as named:
        signal.pthread_kill(threading.get_ident(), 0)  # tgkill(2), signal 0: a check, nothing delivered
        try:
            os.kill(MISSING_PID, signal.SIGUSR2)
        except ProcessLookupError:
            pass
        k = kills.wait_for(lambda line: str(MISSING_PID) in line)
        n = named.wait_for(lambda line: str(MISSING_PID) in line)
    assert [line.split() for line in k] == [["PID", "COMM", "SIG", "TPID", "RESULT"],
                                            [me, k[1].split()[1], "12", str(MISSING_PID), "ESRCH"]]
    assert [line.split()[2:4] for line in n[1:]] == [["0", me], ["SIGUSR2", str(MISSING_PID)]]  # 0 has no name


# -- sigsnoop ----------------------------------------------------------------------

def test_sigsnoop_signal_generate_and_sigchld() -> None:
    target = sleeper()
    name = Path(str(target.args[0])).name
    with tool("sigsnoop") as snoop:
        os.kill(target.pid, signal.SIGUSR1)  # its default action ends it: the kernel then sends us SIGCHLD
        target.wait()
        events = until(snoop, lambda e: e["sig"] == signal.SIGCHLD and e["pid"] == target.pid)
    usr1 = [e for e in events if e["tpid"] == target.pid]
    assert [(e["pid"], e["sig"], e["tcomm"], e["ret"], e["result"], e["code"], e["group"]) for e in usr1] == \
        [(os.getpid(), 10, name, 0, 0, 0, 1)]  # delivered, SI_USER, to the whole process
    chld = events[-1]
    assert (chld["comm"], chld["tpid"], chld["code"]) == (name, os.getpid(), 2)  # CLD_KILLED


def test_sigsnoop_kill_only_failed_pid_and_signal() -> None:
    target = sleeper()
    try:
        with tool("sigsnoop", "-k", "-x") as failed, \
                tool("sigsnoop", "-p", str(os.getpid()), "-s", signal_option("SIGUSR2")) as narrow:
            subprocess.run(["/bin/kill", "-s", "USR2", str(target.pid)], check=True)
            os.kill(target.pid, signal.SIGUSR1)
            os.kill(target.pid, signal.SIGUSR2)
            try:
                os.kill(MISSING_PID, signal.SIGUSR2)
            except ProcessLookupError:
                pass
            kills = until(failed, lambda e: e["tpid"] == MISSING_PID)
            seen = until(narrow, lambda e: e["tpid"] == target.pid)
    finally:
        target.kill()
        target.wait()
    assert [(e["pid"], e["sig"], e["ret"], e["result"]) for e in kills] == \
        [(os.getpid(), 12, -errno.ESRCH, -1)]  # -k: kill(2) only, and -x: its failures only
    assert [(e["pid"], e["sig"], e["tpid"]) for e in seen] == [(os.getpid(), 12, target.pid)]


# -- threadsnoop -------------------------------------------------------------------

THREADS = r"""
import sys, threading
sys.stdin.readline()
ids = []
for _ in range(3):
    t = threading.Thread(target=lambda: ids.append(threading.get_native_id()))
    t.start(); t.join()
print(" ".join(map(str, ids)), flush=True)
"""


def test_sigsnoop_n_names_the_signal() -> None:
    me = str(os.getpid())
    with running("ecli", "run", "sigsnoop", "-p", me, "-k", "-x") as numbers, \
            running("ecli", "run", "sigsnoop", "-p", me, "-k", "-x", "-n") as names:
        try:
            os.kill(MISSING_PID, signal.SIGUSR2)
        except ProcessLookupError:
            pass
        plain = numbers.wait_for(lambda line: str(MISSING_PID) in line)[-1].split()
        named = names.wait_for(lambda line: str(MISSING_PID) in line)[-1].split()
    assert (plain[0], plain[2:5], named[0], named[2:5]) == \
        (me, ["12", str(MISSING_PID), "ESRCH"], me, ["SIGUSR2", str(MISSING_PID), "ESRCH"])


def test_threadsnoop_new_threads_of_one_pid() -> None:
    child, other = py_child(THREADS, "pyeutc"), py_child(THREADS, "pyeuto")
    with tool("threadsnoop", "-p", str(child.pid)) as snoop:
        go(other)
        tids = [int(t) for t in go(child).split()]
        seen = until(snoop, lambda e: e["tid"] == tids[-1])
    child.wait()
    other.wait()
    name = Path(str(child.args[0])).name
    assert [(e["pid"], e["tid"], e["creator_tid"], e["comm"]) for e in seen] == \
        [(child.pid, tid, child.pid, name) for tid in tids]  # `other`'s threads, started first, are not there
    assert all(e["clone_flags"] & 0x00010000 for e in seen)


@pytest.mark.parametrize("name", ["killsnoop", "gethostlatency"])
def test_a_calls_slot_map_is_state_not_a_result(name: str) -> None:
    """killsnoop and gethostlatency keep a slot per thread between a call's
    entry and exit, reused, never deleted: `@internal`, so it is not printed
    at exit as a result map would be (`@calls[1234]: ...`)."""
    import socket

    with running("ecli", "run", name, "-p", str(os.getpid())) as r:
        os.kill(os.getpid(), 0)
        socket.getaddrinfo("127.0.0.1", None, flags=socket.AI_NUMERICHOST)
        r.wait_for(lambda line: str(os.getpid()) in line)
        assert r.stop() == 0
        after = r.rest()
    assert not [line for line in after if line.startswith("@")], after
