"""`cgroup`: cgroup v2 ids and paths (the id of a cgroup is its directory's
inode number); as a decoder, an id as its path below the cgroup root
("/system.slice/ssh.service"), and an id no longer present as its number."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from ..files import cgroup2_root
from .registry import Decode, DecoderType

__all__ = ["CgroupNames", "cgroup2_root", "cgroup_id_and_level"]


def cgroup_id_and_level(path: str, root: str | None = None) -> tuple[int, int]:
    """(id, depth below the root) of a cgroup given as a path, absolute or
    relative to the cgroup v2 mount; OSError if it is not a cgroup directory."""
    root = root or cgroup2_root()
    if root is None:
        raise FileNotFoundError("no cgroup v2 hierarchy is mounted: mount one with "
                                "'mount -t cgroup2 none /sys/fs/cgroup/unified'")
    full = path if path.startswith(root) else os.path.join(root, path.lstrip("/"))
    full = os.path.realpath(full)
    st = os.stat(full)
    if not os.path.isdir(full) or not os.path.exists(os.path.join(full, "cgroup.procs")):
        raise NotADirectoryError(f"{path} is not a cgroup v2 directory under {root}")
    rel = os.path.relpath(full, os.path.realpath(root))
    level = 0 if rel == "." else rel.count(os.sep) + 1
    return st.st_ino, level


class CgroupNames:
    """cgroup id -> path below the cgroup v2 root. A miss rescans the tree, at
    most once a second; an id still unknown (a removed cgroup) is remembered
    as its number until the next scan, which starts the table afresh."""

    RESCAN_AFTER_S = 1.0

    def __init__(self, root: str | None = None):
        self.root = root or cgroup2_root() or "/sys/fs/cgroup"
        self._names: dict[int, str] = {}
        self._scanned_at = -self.RESCAN_AFTER_S

    def _scan(self) -> None:
        names = {}
        for dirpath, _dirs, _files in os.walk(self.root):
            try:
                ino = os.stat(dirpath).st_ino
            except OSError:
                continue
            rel = os.path.relpath(dirpath, self.root)
            names[ino] = "/" if rel == "." else "/" + rel
        self._names = names
        self._scanned_at = time.monotonic()

    def name(self, cgroup_id: int) -> str:
        found = self._names.get(cgroup_id)
        if found is not None:
            return found
        if time.monotonic() - self._scanned_at < self.RESCAN_AFTER_S:
            return str(cgroup_id)  # looked for again after the next scan
        self._scan()
        found = self._names.get(cgroup_id)
        if found is None:  # not in the tree now: a removed cgroup
            self._names[cgroup_id] = found = str(cgroup_id)
        return found


def _make(params: Mapping[str, Any]) -> Decode:
    root = params.get("root")
    if root is not None and not isinstance(root, str):
        raise ValueError("root: expected the path of a cgroup v2 mount")
    return CgroupNames(root).name


DECODER = DecoderType("cgroup", ("int",), ("root",), _make, "a cgroup v2 id as its path below the cgroup v2 root")
