"""Triggers: the real activity each check causes in the guest once its program
is attached, recording in the check's context exactly what the program should
report (pid, unique path, fd, return value...).

Standard library only: this runs in the guest's Debian python3. Every name is
unique per check (the context's `token`), so an event can only match the
activity that was meant to cause it. Processes a trigger leaves running are
stopped through `ctx["cleanup"]`.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import os
import pty
import select
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from typing import Any

Ctx = dict[str, Any]
Action = Callable[[Ctx], None]

UPROBE_TARGET = "/kmx/bin/kmx-uprobe-target"  # the path the uprobe test program names in its SEC()
STACKS_TARGET = "/kmx/bin/kmx-stacks-target"  # spins in kmx_user_spin, reads /dev/zero in kmx_kernel_reads
AT_FDCWD = -100
SYS_OPENAT2 = 437  # x86_64


def _number(ctx: Ctx) -> int:
    return int(ctx["token"], 16)


def _later(ctx: Ctx, fn: Callable[[], object]) -> None:
    ctx.setdefault("cleanup", []).append(fn)


def _stop_child(proc: subprocess.Popen[bytes]) -> Callable[[], object]:
    def stop() -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return stop


def _copy_exe(src: str, name: str) -> str:
    """A copy of an executable under a unique name, so its comm is unique too."""
    path = f"/tmp/{name}"[:20]
    shutil.copy(src, path)
    os.chmod(path, 0o755)  # noqa: S103 - an executable, as the original
    return path


# -- files -------------------------------------------------------------------

def open_file(ctx: Ctx) -> None:
    path = f"/tmp/kmx-open-{ctx['token']}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    ctx.update(pid=os.getpid(), path=path, fd=fd)


def open_relative(ctx: Ctx) -> None:
    """openat(AT_FDCWD, "rel-TOKEN") from inside a unique directory: -F must
    print the full path."""
    folder = f"/tmp/kmx-dir-{ctx['token']}"
    os.mkdir(folder)
    name = f"rel-{ctx['token']}"
    before = os.getcwd()
    os.chdir(folder)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
    finally:
        os.chdir(before)
    os.close(fd)
    ctx.update(pid=os.getpid(), path=name, fullpath=f"{folder}/{name}", fd=fd)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def open_openat2(ctx: Ctx) -> None:
    path = f"/tmp/kmx-oa2-{ctx['token']}"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    how = _OpenHow(os.O_WRONLY | os.O_CREAT, 0o644, 0)
    fd = libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(AT_FDCWD), path.encode(), ctypes.byref(how),
                      ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"openat2({path})")
    os.close(fd)
    ctx.update(pid=os.getpid(), path=path, fd=fd)


def unlink_file(ctx: Ctx) -> None:
    path = f"/tmp/kmx-unlink-{ctx['token']}"
    with open(path, "w"):
        pass
    os.unlink(path)
    ctx.update(pid=os.getpid(), path=path)


def unlinkat_file(ctx: Ctx) -> None:
    """unlinkat(2) of a fresh file in /tmp (glibc's unlink() is unlink(2))."""
    name = f"kmx-unlinkat-{ctx['token']}"
    fd = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
        os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
    ctx.update(pid=os.getpid(), path=name)


def unlink_missing(ctx: Ctx) -> None:
    """unlink() of a name that does not exist: do_unlinkat returns -ENOENT."""
    path = f"/tmp/kmx-missing-{ctx['token']}"
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    ctx.update(pid=os.getpid(), path=path, ret=-errno.ENOENT)


def write_null(ctx: Ctx) -> None:
    fd = os.open("/dev/null", os.O_WRONLY)
    os.write(fd, b"kmx")
    os.close(fd)
    ctx.update(pid=os.getpid())


MAPTALLY_WRITES = ((9973, 3), (14157, 4))  # sizes no other write of the harness has


def write_sizes(ctx: Ctx) -> None:
    """write(2) calls of unusual sizes from the harness itself (the pid a
    map-only program filters on, known before it starts: `{harness_pid}`)."""
    fd = os.open("/dev/null", os.O_WRONLY)
    try:
        for size, times in MAPTALLY_WRITES:
            for _ in range(times):
                os.write(fd, b"m" * size)
    finally:
        os.close(fd)
    ctx.update(pid=os.getpid())


# -- processes and signals -----------------------------------------------------

def exec_false(ctx: Ctx) -> None:
    """exec a uniquely named copy of /bin/false: one exec and one exit event,
    exit code 1."""
    path = _copy_exe("/bin/false", f"kmxf{ctx['token']}")
    proc = subprocess.Popen([path])
    code = proc.wait(30)
    ctx.update(pid=proc.pid, path=path, comm=os.path.basename(path)[:15], exit_code=code)


def sleepy_child(ctx: Ctx) -> None:
    """A uniquely named shell that sleeps and wakes 40 times (run-queue latency
    samples under its own pid); it runs on while the check waits."""
    path = _copy_exe("/bin/bash", f"kmxr{ctx['token']}")
    proc = subprocess.Popen([path, "-c", "for i in $(seq 40); do read -t 0.05 x; done"], stdin=subprocess.PIPE)
    _later(ctx, _stop_child(proc))
    ctx.update(pid=proc.pid, comm=os.path.basename(path)[:15])


def busy_child(ctx: Ctx) -> None:
    """A uniquely named shell that spins for a few seconds (CPU samples)."""
    path = _copy_exe("/bin/bash", f"kmxp{ctx['token']}")
    proc = subprocess.Popen([path, "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
    _later(ctx, _stop_child(proc))
    ctx.update(pid=proc.pid, comm=os.path.basename(path)[:15])


def stacks_busy(ctx: Ctx) -> None:
    """The stack target, under a unique name, spinning in user space and
    reading /dev/zero in the kernel until the check ends."""
    path = _copy_exe(STACKS_TARGET, f"kmxs{ctx['token']}")
    proc = subprocess.Popen([path])
    _later(ctx, _stop_child(proc))
    ctx.update(pid=proc.pid, comm=os.path.basename(path)[:15])


def kill_missing(ctx: Ctx) -> None:
    """kill(pid, SIGUSR1) for a pid above any pid_max: fails with ESRCH."""
    tpid = 4_200_000 + _number(ctx) % 90_000
    try:
        os.kill(tpid, signal.SIGUSR1)
    except ProcessLookupError:
        pass
    ctx.update(pid=os.getpid(), tpid=tpid, sig=int(signal.SIGUSR1), ret=-errno.ESRCH)


def bash_command(ctx: Ctx) -> None:
    """An interactive bash on a pty reads one command line with readline."""
    master, slave = pty.openpty()
    command = f"echo kmx{ctx['token']}"
    env = {"PATH": "/usr/bin:/bin", "TERM": "dumb", "HOME": "/root"}
    proc = subprocess.Popen(["/bin/bash", "--norc", "--noprofile", "-i"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    os.close(slave)
    _later(ctx, _stop_child(proc))
    _later(ctx, lambda: os.close(master))
    os.write(master, f"{command}\nexit\n".encode())
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                os.read(master, 4096)
            except OSError:
                break
    ctx.update(pid=proc.pid, command=command)


def uprobe_call(ctx: Ctx) -> None:
    """The test target calls kmx_add(a, b) once."""
    n = _number(ctx)
    a, b = 1000 + n % 1000, 2000 + (n // 1000) % 1000
    proc = subprocess.Popen([UPROBE_TARGET, str(a), str(b)])
    if proc.wait(30) != 0:
        raise RuntimeError(f"{UPROBE_TARGET} {a} {b} exited with {proc.returncode}")
    ctx.update(pid=proc.pid, a=a, b=b, sum=a + b)


def _kallsyms(names: set[str]) -> dict[str, int]:
    """The addresses of `names` in /proc/kallsyms (as root: real ones)."""
    found = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            address, _kind, name = line.split()[:3]
            if name in names:
                found[name] = int(address, 16)
    return found


def exec_kfuncs(ctx: Ctx) -> None:
    """exec a uniquely named copy of /bin/false, and note what the kernel has
    for kfuncs.bpf.c to report: the kfunc bpf_task_from_pid (Linux 6.2) or
    not, and do_exit's address (a typeless __ksym)."""
    symbols = _kallsyms({"bpf_task_from_pid", "do_exit"})
    path = _copy_exe("/bin/false", f"kmxk{ctx['token']}")
    proc = subprocess.Popen([path])
    proc.wait(30)
    has = "bpf_task_from_pid" in symbols
    ctx.update(pid=proc.pid, path=path, has_kfunc=int(has), kfunc_tgid=proc.pid if has else -1,
               do_exit=symbols["do_exit"])


def libc_strtol(ctx: Ctx) -> None:
    """This process calls libc's strtol() once on a unique number (uprobes.bpf.c
    attaches to it by library name)."""
    text = f"-{_number(ctx) % 1000000 + 1}kmx"
    libc = ctypes.CDLL("libc.so.6")
    libc.strtol.restype = ctypes.c_long
    libc.strtol.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    ret = libc.strtol(text.encode(), None, 10)
    ctx.update(pid=os.getpid(), text=text, base=10, ret=ret)


# -- network -------------------------------------------------------------------

def connect_blocked(ctx: Ctx) -> None:
    """connect() to 1.1.1.1: the LSM program refuses it (EPERM); without it the
    guest has no route (ENETUNREACH)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    try:
        sock.connect(("1.1.1.1", 80))
        result = "connected"
    except OSError as e:
        result = errno.errorcode.get(e.errno or 0, str(e))
    finally:
        sock.close()
    ctx.update(pid=os.getpid(), connect_errno=result)


def udp_lo(ctx: Ctx) -> None:
    """One UDP datagram of a unique size over loopback to a bound socket."""
    size = 100 + _number(ctx) % 300
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", ctx["port"]))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tx.sendto(b"k" * size, ("127.0.0.1", ctx["port"]))
        rx.settimeout(5)
        rx.recv(65536)
    finally:
        tx.close()
        rx.close()
    ctx.update(pid=os.getpid(), ip_len=20 + 8 + size, frame_len=14 + 20 + 8 + size)


def tcp_connect(ctx: Ctx) -> None:
    """A TCP connection over loopback to a unique port, then closed."""
    port = ctx["port"]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn, _ = server.accept()
    for s in (conn, client, server):
        s.close()
    ctx.update(pid=os.getpid())


# -- block devices ---------------------------------------------------------------

LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_CTL_GET_FREE = 0x4C82
MD_MAJOR = 9


def _iow(nr: int, size: int) -> int:
    return (1 << 30) | (size << 16) | (MD_MAJOR << 8) | nr


SET_ARRAY_INFO = _iow(0x23, 72)  # mdu_array_info_t: 18 ints
ADD_NEW_DISK = _iow(0x21, 20)  # mdu_disk_info_t: 5 ints
RUN_ARRAY = _iow(0x30, 12)  # mdu_param_t: 3 ints
STOP_ARRAY = (MD_MAJOR << 8) | 0x32
MD_DISK_ACTIVE, MD_DISK_SYNC = 1, 2


def _loop_device(backing: str) -> str:
    with open("/dev/loop-control", "rb") as control:
        n = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
    dev = f"/dev/loop{n}"
    fd = os.open(backing, os.O_RDWR)
    try:
        with open(dev, "r+b", buffering=0) as loop:  # opened for reading only, the loop device would be read-only
            fcntl.ioctl(loop, LOOP_SET_FD, fd)
    finally:
        os.close(fd)
    return dev


def md_flush(ctx: Ctx) -> None:
    """A two-disk RAID1 without superblocks on loop devices (what `mdadm
    --build` does, by ioctl), then a write and fsync: one md flush request."""
    size_kb = 8192
    disks = []
    for i in range(2):
        backing = f"/tmp/kmx-md{i}-{ctx['token']}"
        with open(backing, "wb") as f:
            f.truncate(size_kb * 1024)
        disks.append(_loop_device(backing))
    for dev in disks:
        _later(ctx, functools.partial(_detach_loop, dev))
    md = "/dev/md0"
    if not os.path.exists(md):
        with open("/sys/module/md_mod/parameters/new_array", "w") as f:
            f.write("md0")
        for _ in range(50):  # devtmpfs makes the node
            if os.path.exists(md):
                break
            time.sleep(0.02)
    fd = os.open(md, os.O_RDWR)
    try:
        # 0.90, raid1 of size_kb per disk, 2 disks, not persistent, clean (no resync), 2 active and working
        info = [0, 90, 0, 0, 1, size_kb, 2, 2, 0, 1, 0, 1, 2, 2, 0, 0, 0, 0]
        fcntl.ioctl(fd, SET_ARRAY_INFO, struct.pack("18i", *info))
        for i, dev in enumerate(disks):
            rdev = os.stat(dev).st_rdev
            disk = struct.pack("5i", i, os.major(rdev), os.minor(rdev), i, (1 << MD_DISK_ACTIVE) | (1 << MD_DISK_SYNC))
            fcntl.ioctl(fd, ADD_NEW_DISK, disk)
        fcntl.ioctl(fd, RUN_ARRAY, bytes(12))
    finally:
        os.close(fd)
    _later(ctx, _stop_md)
    fd = os.open(md, os.O_WRONLY)
    try:
        os.write(fd, b"k" * 4096)
        os.fsync(fd)
    finally:
        os.close(fd)
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    ctx.update(pid=os.getpid(), comm=comm, disk="md0")


def md_flush_twins(ctx: Ctx) -> None:
    """md_flush, and which twin must report it: fentry where the kernel has
    module BTF (5.11 and later), else kprobe (`via`, mdflush-twins.h)."""
    md_flush(ctx)
    release = tuple(int(p) for p in os.uname().release.split("-")[0].split(".")[:2])
    ctx["via"] = 0 if release >= (5, 11) else 1
    ctx["twin"] = "'flush_fentry' (fentry)" if release >= (5, 11) else "'flush_kprobe' (kprobe)"


def _stop_md() -> None:
    fd = os.open("/dev/md0", os.O_RDWR)
    try:
        fcntl.ioctl(fd, STOP_ARRAY)
    finally:
        os.close(fd)


def _detach_loop(dev: str) -> None:
    with open(dev, "rb") as loop:
        fcntl.ioctl(loop, LOOP_CLR_FD)
