"""A cgroup v2 group of a test's own, for the catalogue's -c/--cgroup filters
(the options take its path through the `cgroup` converter)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyeunomia.decoders.cgroup import cgroup2_root

from ...conftest import require


@contextmanager
def new_cgroup(prefix: str) -> Iterator[Path]:
    """A fresh cgroup v2 directory (the hybrid mount's or the unified one),
    removed once its processes have exited (rmdir fails with EBUSY until the
    kernel has let the last one go: retried for 5 s)."""
    root = cgroup2_root()
    require(root is not None, "no cgroup v2 hierarchy is mounted")
    assert root is not None
    group = Path(root) / f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    group.mkdir()
    try:
        yield group
    finally:
        deadline = time.monotonic() + 5
        while True:
            try:
                group.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
