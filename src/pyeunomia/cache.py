"""Where pyeunomia keeps what it can rebuild: vmlinux.h for ecc, minimal
kernel BTF for the loader. Kept apart so the runner can find its cache
without importing the compiler."""

from __future__ import annotations

import os


def cache_root() -> str:
    """A plain string: pathlib costs start-up time (it imports urllib)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is to be ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pyeunomia")


TEMP_PREFIX = ".tmp-"  # then the writer's pid and '-': what a killed writer leaves can be told apart


def write_atomically(path: str, data: bytes) -> None:
    """Concurrent runs may race to fill the cache: each writes a private
    temporary file and renames it, so readers never see half a file.
    Directories are created private: the cache feeds the kernel loader.
    The temporary file's name carries the pid, so a file left by a killed
    writer can be swept (runner/corebtf.py sweep)."""
    import tempfile

    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
