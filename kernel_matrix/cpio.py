"""A writer for the `newc` cpio format the kernel unpacks as an initramfs.

Written here rather than calling cpio(1) so that no extra host tool is needed,
every entry is owned by root whoever builds it, and a small archive (the
per-run payload) can be made straight from memory without a temporary tree.
The kernel unpacks concatenated archives in order, later entries overwriting
earlier ones, which is how the cached layers and the payload combine.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

TRAILER = "TRAILER!!!"


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def header(name: str, mode: int, size: int, ino: int, mtime: int = 0, rdev: tuple[int, int] = (0, 0)) -> bytes:
    """One newc header and the (padded) name; uid and gid are always 0."""
    raw = name.encode("utf-8", "surrogateescape") + b"\0"
    fields = (ino, mode, 0, 0, 1, mtime, size, 0, 0, rdev[0], rdev[1], len(raw), 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields)
    return head + raw + _pad(len(head) + len(raw))


class Writer:
    """Appends entries to an open binary file; call `close` for the trailer."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.ino = 1
        self.dirs: set[str] = set()

    def parents(self, name: str) -> None:
        """Directory entries for every ancestor of `name` not yet written: the
        kernel's unpacker does not create missing parents."""
        parts = name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dir(d)

    def _next(self) -> int:
        self.ino += 1
        return self.ino

    def dir(self, name: str, perm: int = 0o755, mtime: int = 0) -> None:
        self.dirs.add(name.strip("/"))
        self.out.write(header(name, stat.S_IFDIR | perm, 0, self._next(), mtime))

    def file(self, name: str, data: bytes, perm: int = 0o644, mtime: int = 0) -> None:
        self.out.write(header(name, stat.S_IFREG | perm, len(data), self._next(), mtime))
        self.out.write(data + _pad(len(data)))

    def symlink(self, name: str, target: str, mtime: int = 0) -> None:
        data = target.encode("utf-8", "surrogateescape")
        self.out.write(header(name, stat.S_IFLNK | 0o777, len(data), self._next(), mtime))
        self.out.write(data + _pad(len(data)))

    def node(self, name: str, mode: int, rdev: int, mtime: int = 0) -> None:
        self.out.write(header(name, mode, 0, self._next(), mtime, (os.major(rdev), os.minor(rdev))))

    def close(self) -> None:
        self.out.write(header(TRAILER, 0, 0, 0))


def walk(root: Path) -> Iterator[Path]:
    """Every path below root, parents before children, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            yield base / name


def add_tree(writer: Writer, root: Path, prefix: str = "", skip: Iterable[str] = ()) -> int:
    """Add everything under `root` as `prefix/...` (hard links become copies);
    returns how many entries were written. Paths in `skip` (relative, with
    their contents) are left out."""
    skipped = tuple(s.strip("/") for s in skip)
    count = 0
    for path in walk(root):
        rel = path.relative_to(root).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skipped):
            continue
        name = f"{prefix.strip('/')}/{rel}".lstrip("/")
        st = path.lstat()
        mtime = int(st.st_mtime)
        perm = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            writer.dir(name, perm, mtime)
        elif stat.S_ISREG(st.st_mode):
            writer.file(name, path.read_bytes(), perm, mtime)
        elif stat.S_ISLNK(st.st_mode):
            writer.symlink(name, os.readlink(path), mtime)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            writer.node(name, st.st_mode, st.st_rdev, mtime)
        else:
            continue  # sockets and fifos have no place in an initramfs
        count += 1
    return count


def read_names(data: bytes) -> list[str]:
    """The entry names of a newc archive (for tests and for checking a cached layer)."""
    names: list[str] = []
    pos = 0
    while pos + 110 <= len(data):
        if data[pos:pos + 6] != b"070701":
            raise ValueError(f"not a newc header at offset {pos}")
        size = int(data[pos + 54:pos + 62], 16)
        namesize = int(data[pos + 94:pos + 102], 16)
        name = data[pos + 110:pos + 110 + namesize - 1].decode("utf-8", "surrogateescape")
        if name == TRAILER:
            return names
        names.append(name)
        pos += 110 + namesize
        pos += -pos % 4
        pos += size + (-size % 4)
    raise ValueError("archive ends without a trailer")
