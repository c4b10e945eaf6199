"""Minimal kernel BTF per object, cached, so a load skips the kernel's 5 MB of BTF.

CO-RE relocation is most of what libbpf does when it loads a tracing object:
it reads and indexes all of /sys/kernel/btf/vmlinux and searches it for every
type the program touches (about 20 ms of the 35 ms opensnoop takes to load
here). `bpftool gen min_core_btf` writes the few types one object's
relocations need, and libbpf relocates against that file just the same
(`btf_custom_path`). The first run of an object on a kernel writes it, when
the run ends; later runs start from it.

The minimal file must answer every relocation as the whole kernel would.
Two kinds it cannot answer are never cached: bpf_core_type_id_kernel()
(the id would be the small file's), and types found only in kernel modules
(libbpf does not search modules when given a file).

The cache is trusted input to the loader, so a file is used, and written,
only where this user owns it and every directory up to / belongs to root or
this user and nobody else can write there (sticky ones like /tmp aside):
under `sudo` with a user's HOME, nothing is cached. A file is keyed by the
object's bytes and by the kernel (its version string, its build id and
samples of its BTF), so a new kernel or a rebuilt object never meets a
stale file.

bpftool reads the object from, and writes its output to, memory files only
this process holds: there is no temporary file, so a run killed while
bpftool works leaves nothing behind; the final write's temporary file, if a
kill catches it, is swept by the next run that writes to the directory.
"""

from __future__ import annotations

import os
import stat

from ..cache import TEMP_PREFIX, cache_root, write_atomically
from ..errors import PackageError, ToolError, ToolMissingError
from ..external import find_bpftool, min_core_btf
from ..files import safe_directories
from ..format.btf import Btf
from ..format.btfext import TYPE_ID_LOCAL, TYPE_ID_TARGET, core_relocations
from ..format.elf import ElfFile

try:
    from _blake2 import blake2b  # what hashlib.blake2b is; hashlib itself loads OpenSSL (~2 ms)
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import blake2b

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
DISABLE_ENV = "PYEUNOMIA_NO_BTF_CACHE"
_SAMPLE = 64 << 10
_GENERATE_TIMEOUT_S = 30
_STALE_TEMP_S = 3600  # a temporary file this old was left by a killed run, whatever its pid says
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


def trusted(path: str) -> str | None:
    """The real path of a cached file safe to give the loader, else None."""
    try:
        real = os.path.realpath(path)
        st = os.lstat(real)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            return None
        return real if safe_directories(os.path.dirname(real)) else None
    except OSError:
        return None


def discard(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def generate(obj: bytes, path: str) -> bool:
    """Write the object's minimal BTF to `path`; False (and a debug line) when
    bpftool is missing, the object's relocations are of a kind the cache
    cannot answer, or the cache directory is not safe."""
    try:
        find_bpftool()
    except ToolMissingError:
        _debug("no bpftool: the kernel BTF cache stays empty")
        return False
    try:
        names = _relocated_names(obj)
    except PackageError as e:
        _debug("not cached: %s", e)
        return False
    if names is None:
        _debug("not cached: the object asks for kernel type ids")
        return False
    try:
        kernel_dir = os.path.dirname(path)
        os.makedirs(kernel_dir, mode=0o700, exist_ok=True)
        kernel_dir = os.path.realpath(kernel_dir)
        if not safe_directories(kernel_dir):
            _debug("not cached: %s is writable by others", kernel_dir)
            return False
        sweep(kernel_dir)
        data = _min_core_btf(obj)
        if data is None:
            return False
        missing = names - {t.name for t in Btf.parse(data).types}
        if missing and _kernel_has_module_btf():
            _debug("not cached: %s may live in kernel modules", ", ".join(sorted(missing)))
            return False
        write_atomically(os.path.join(kernel_dir, os.path.basename(path)), data)
    except (OSError, PackageError) as e:
        _debug("cannot cache the kernel BTF at %s: %s", path, e)
        return False
    prune(kernel_dir)
    return True


def _min_core_btf(obj: bytes) -> bytes | None:
    """bpftool's minimal BTF for `obj` (external.min_core_btf: memory files
    only, so a run killed while bpftool works, when a run ends, leaves
    nothing behind)."""
    try:
        return min_core_btf(obj, KERNEL_BTF, _GENERATE_TIMEOUT_S)
    except (ToolError, ToolMissingError) as e:
        _debug("%s", e)
        return None


def sweep(kernel_dir: str) -> None:
    """Remove what killed runs left in the cache: write_atomically's
    `.tmp-<pid>-*` files, ours alone, whose process is gone, or that are
    older than any write takes (the pid may have been reused; a name without
    a pid is an older version's)."""
    import time

    euid, now = os.geteuid(), time.time()
    try:
        with os.scandir(kernel_dir) as it:
            entries = [e for e in it if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(TEMP_PREFIX):].partition("-")[0]
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if st.st_uid != euid or not stat.S_ISREG(st.st_mode):
            continue
        if now - st.st_mtime < _STALE_TEMP_S and (not pid.isdigit() or _alive(int(pid))):
            continue
        discard(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _relocated_names(obj: bytes) -> set[str] | None:
    """The names libbpf looks up in the kernel for the object's CO-RE
    relocations (flavour suffixes `___x` dropped); None if one of them asks
    for a kernel type id, which only the whole kernel BTF can give."""
    elf = ElfFile(obj)
    btf_section, ext_section = elf.section(".BTF"), elf.section(".BTF.ext")
    if btf_section is None or ext_section is None:
        return set()
    btf = Btf.parse(elf.section_bytes(btf_section))
    names = set()
    for relo in core_relocations(elf.section_bytes(ext_section), elf.endian):
        if relo.kind == TYPE_ID_TARGET:
            return None
        if relo.kind != TYPE_ID_LOCAL:
            names.add(btf[relo.type_id].name.split("___")[0])
    names.discard("")
    return names


def _kernel_has_module_btf() -> bool:
    try:
        return any(name != "vmlinux" for name in os.listdir(os.path.dirname(KERNEL_BTF)))
    except OSError:
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
