"""Reading a file named from outside: regular files only, bounded before reading.

A path can name a FIFO (opening it for reading waits for a writer: forever),
a device (/dev/zero never ends: `ecc --vmlinux /dev/zero` once grew to 23.7 GB
before the OOM killer stopped it), or a huge regular file. So the file is
opened with O_NONBLOCK (opening a FIFO returns at once), checked with fstat
(only a regular file is read; a directory is refused as EISDIR, as open(2)
would for writing), refused when it says it is larger than the limit, and
then read for at most limit + 1 bytes, whatever its size said (a sysfs or
procfs file may report 4096 bytes or 0).

Callers turn the exceptions into their own one-line errors.
"""

from __future__ import annotations

import errno
import os
import stat

from .format.units import size_text

CHUNK = 1 << 16  # reads after the first: a sysfs file gives at most a page per read


class RefusedFile(Exception):
    """A file that is not read: not a regular file, or larger than the limit."""


class NotRegularFile(RefusedFile):
    def __init__(self, kind: str):
        super().__init__(f"not a regular file ({kind})")
        self.kind = kind


class FileTooLarge(RefusedFile):
    def __init__(self, limit: int):
        super().__init__(f"larger than {size_text(limit)}")
        self.limit = limit


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"


def open_regular(path: str | os.PathLike[str], limit: int) -> tuple[int, os.stat_result]:
    """An fd (O_RDONLY, O_CLOEXEC) of the regular file at `path` and its stat,
    checked as the module docstring says; the caller closes the fd.
    Raises OSError (a directory: IsADirectoryError), NotRegularFile or FileTooLarge."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(file_kind(st.st_mode))
        if st.st_size > limit:
            raise FileTooLarge(limit)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_limited(fd: int, size_hint: int, limit: int) -> bytes:
    """At most limit + 1 bytes from `fd`; a file of `size_hint` bytes is read
    in one call (no copy), a short-reading one in chunks. Raises FileTooLarge."""
    parts: list[bytes] = []
    got = 0
    while got <= limit:
        part = os.read(fd, min(limit + 1 - got, size_hint + 1 if not parts else CHUNK))
        if not part:
            break
        parts.append(part)
        got += len(part)
    if got > limit:
        raise FileTooLarge(limit)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file at `path`, refused beyond `limit` bytes.
    Raises OSError, NotRegularFile or FileTooLarge."""
    fd, st = open_regular(path, limit)
    try:
        return read_limited(fd, st.st_size, limit)
    finally:
        os.close(fd)


def safe_directories(directory: str) -> bool:
    """`directory` (a real path) and every directory above it belong to root
    or this user, and nobody else can write to them unless they are sticky:
    no one else can swap a file inside for a link to something else (the
    kernel BTF cache, the exporter's API token)."""
    euid = os.geteuid()
    while True:
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (0, euid):
            return False
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            return False
        parent = os.path.dirname(directory)
        if parent == directory:
            return True
        directory = parent


def cgroup2_root(mounts: str = "/proc/self/mounts") -> str | None:
    """Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a unified
    system, /sys/fs/cgroup/unified on a hybrid one."""
    try:
        with open(mounts) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "cgroup2":
                    return fields[1]
    except OSError:
        return None
    return None
