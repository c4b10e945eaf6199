"""Minimal kernel BTF per object, cached, so a load skips the kernel's 5 MB of BTF.

CO-RE relocation is most of what libbpf does when it loads a tracing object:
it reads and indexes all of /sys/kernel/btf/vmlinux and searches it for every
type the program touches (about 20 ms of the 35 ms opensnoop takes to load
here). `bpftool gen min_core_btf` writes the few types one object's
relocations need, and libbpf relocates against that file just the same
(`btf_custom_path`). The first run of an object on a kernel writes it, when
the run ends; later runs start from it.

The cache is trusted input to the loader, so a file is used only if this
user owns it and nobody else can write it. A file is keyed by the object's
bytes and by the kernel (its version string, its build id and samples of
its BTF), so a new kernel or a rebuilt object never meets a stale file.
"""

from __future__ import annotations

import os
import stat

from ..cache import cache_root, write_atomically

try:
    from _blake2 import blake2b  # what hashlib.blake2b is; hashlib itself loads OpenSSL (~2 ms)
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import blake2b

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
DISABLE_ENV = "PYEUNOMIA_NO_BTF_CACHE"
_SAMPLE = 64 << 10
_GENERATE_TIMEOUT_S = 30
KEEP_PER_KERNEL = 256  # files of ~1 KiB; an ecc edit-and-run loop makes a new object each time
KEEP_KERNELS = 4


def _debug(fmt: str, *args: object) -> None:
    import logging  # not at import: logging costs start-up time

    logging.getLogger(__name__).debug(fmt, *args)


def _kernel_key() -> str | None:
    """Identifies the running kernel's BTF without hashing all of it."""
    h = blake2b(digest_size=16)
    try:
        for path in ("/proc/version", "/sys/kernel/notes"):
            with open(path, "rb") as f:
                h.update(f.read(4096))
        with open(KERNEL_BTF, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            h.update(size.to_bytes(8, "little"))
            h.update(f.read(_SAMPLE))
            f.seek(max(0, size - _SAMPLE))
            h.update(f.read(_SAMPLE))
    except OSError:
        return None
    return h.hexdigest()


def cache_path(obj: bytes) -> str | None:
    """Where this object's minimal BTF for the running kernel lives."""
    if os.environ.get(DISABLE_ENV):
        return None
    kernel = _kernel_key()
    if kernel is None:
        return None
    return os.path.join(cache_root(), "core-btf", kernel, f"{blake2b(obj, digest_size=16).hexdigest()}.btf")


def trusted(path: str) -> bool:
    """Owned by us and writable by nobody else, the directory included."""
    try:
        for p in (path, os.path.dirname(path)):
            st = os.stat(p)
            if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
    except OSError:
        return False
    return True


def discard(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def generate(obj: bytes, path: str) -> bool:
    """Write the object's minimal BTF to `path`; False (and a debug line) when
    bpftool is missing or cannot do it, e.g. for types that live in modules."""
    import subprocess
    import tempfile

    from ..compiler.toolchain import find_bpftool
    from ..errors import ToolMissingError

    try:
        bpftool = find_bpftool()
    except ToolMissingError:
        _debug("no bpftool: the kernel BTF cache stays empty")
        return False
    try:
        with tempfile.TemporaryDirectory(prefix="pyeunomia-btf-") as tmp:
            src, out = os.path.join(tmp, "obj.o"), os.path.join(tmp, "min.btf")
            with open(src, "wb") as f:
                f.write(obj)
            done = subprocess.run([bpftool, "gen", "min_core_btf", KERNEL_BTF, out, src],
                                  capture_output=True, timeout=_GENERATE_TIMEOUT_S, check=False)
            if done.returncode != 0:
                _debug("bpftool gen min_core_btf failed: %s", done.stderr.decode(errors="replace").strip())
                return False
            with open(out, "rb") as f:
                write_atomically(path, f.read())
    except (OSError, subprocess.SubprocessError) as e:
        _debug("cannot cache the kernel BTF at %s: %s", path, e)
        return False
    prune(os.path.dirname(path))
    return True


def prune(kernel_dir: str) -> None:
    """Keep the newest KEEP_PER_KERNEL files for this kernel, and besides its
    directory the newest KEEP_KERNELS - 1 others: the cache never grows
    without bound."""
    import shutil

    def newest_first(paths: list[str]) -> list[str]:
        def mtime(p: str) -> float:
            try:
                return os.stat(p).st_mtime
            except OSError:
                return 0.0
        return sorted(paths, key=mtime, reverse=True)

    try:
        files = [e.path for e in os.scandir(kernel_dir) if e.name.endswith(".btf") and e.is_file()]
        for old in newest_first(files)[KEEP_PER_KERNEL:]:
            discard(old)
        root = os.path.dirname(kernel_dir)
        others = [e.path for e in os.scandir(root) if e.is_dir(follow_symlinks=False) and e.path != kernel_dir]
        for old in newest_first(others)[KEEP_KERNELS - 1:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        _debug("cannot prune the kernel BTF cache at %s: %s", kernel_dir, e)
