"""The catalogue's "files and user space" tools on every kernel of the matrix:
statsnoop, syncsnoop, mountsnoop, filelife, bashreadline, gethostlatency.

Each row runs the built-in tool and one trigger below (standard library only:
the guest runs this module too); the trigger records what the tool must
report, as kernel_matrix/actions.py does.
"""

from __future__ import annotations

import ctypes
import os
import socket
import tempfile
import time

from . import actions as a
from .actions import Ctx
from .checks import event
from .matrix import Program, row

SYS_STATX = 332  # x86_64, as the guests are
STATX_BASIC_STATS = 0x7FF
AT_FDCWD = -100
MS_RDONLY = 1


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def statx_missing(ctx: Ctx) -> None:
    """statx(2) of a unique path that does not exist: -ENOENT."""
    path = f"/tmp/kmx-stat-{ctx['token']}"
    buf = ctypes.create_string_buffer(4096)
    ret = _libc().syscall(ctypes.c_long(SYS_STATX), ctypes.c_int(AT_FDCWD), path.encode(), 0,
                          STATX_BASIC_STATS, buf)
    ctx.update(pid=os.getpid(), path=path, ret=-2 if ret < 0 else ret)


def fdatasync_file(ctx: Ctx) -> None:
    """fdatasync(2) of a fresh file in /tmp."""
    path = f"/tmp/kmx-sync-{ctx['token']}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"kmx")
        os.fdatasync(fd)
    finally:
        os.close(fd)
        os.unlink(path)
    ctx.update(pid=os.getpid(), fd=fd)


def mount_tmpfs(ctx: Ctx) -> None:
    """mount(2) of a tmpfs with a unique source name on a fresh directory, read-only, then umount(2)."""
    target = tempfile.mkdtemp(prefix="kmx-mnt-")
    source = f"kmx-{ctx['token']}"
    libc = _libc()
    try:
        if libc.mount(source.encode(), target.encode(), b"tmpfs", ctypes.c_ulong(MS_RDONLY), b"size=64k") != 0:
            raise OSError(ctypes.get_errno(), f"mount {target}")
        if libc.umount2(target.encode(), 0) != 0:
            raise OSError(ctypes.get_errno(), f"umount {target}")
    finally:
        os.rmdir(target)
    ctx.update(pid=os.getpid(), source=source, target=target)


def short_lived_file(ctx: Ctx) -> None:
    """A fresh file in /tmp created by open(O_CREAT), deleted by unlink(2) 0.1 s later."""
    path = os.path.realpath(f"/tmp/kmx-life-{ctx['token']}")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    time.sleep(0.1)
    os.unlink(path)
    ctx.update(pid=os.getpid(), path=path)


def resolve_localhost(ctx: Ctx) -> None:
    """gethostbyname("localhost") and getaddrinfo("localhost") through libc, in this process."""
    libc = ctypes.CDLL("libc.so.6")
    libc.gethostbyname.restype = ctypes.c_void_p
    libc.gethostbyname(b"localhost")
    try:
        socket.getaddrinfo("localhost", None, socket.AF_INET)
    except OSError:
        pass  # the event is the call, answered or not
    ctx.update(pid=os.getpid(), host="localhost")


ROWS: tuple[Program, ...] = (
    row("tool/statsnoop", None, "ecli run -j statsnoop -x", statx_missing,
        [event(pid="{pid}", path="{path}", ret="{ret}", syscall=3)]),
    row("tool/syncsnoop", None, "ecli run -j syncsnoop", fdatasync_file,
        [event(pid="{pid}", call=2, fd="{fd}")]),
    row("tool/mountsnoop", None, "ecli run -j mountsnoop", mount_tmpfs,
        [event(pid="{pid}", op=0, source="{source}", target="{target}", fstype="tmpfs", flags=MS_RDONLY,
               data="size=64k", ret=0),
         event(pid="{pid}", op=1, target="{target}", ret=0)]),
    row("tool/filelife", None, "ecli run -j filelife", short_lived_file,
        [event(pid="{pid}", creator_pid="{pid}", path="{path}")]),
    row("tool/bashreadline", None, "ecli run -j bashreadline", a.bash_command,
        [event(pid="{pid}", comm="bash", line="{command}")]),
    row("tool/gethostlatency", None, "ecli run -j gethostlatency", resolve_localhost,
        [event(pid="{pid}", host="{host}", call=1), event(pid="{pid}", host="{host}", call=0)]),
)
