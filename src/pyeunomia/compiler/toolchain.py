"""The outside tools ecc needs, and the vmlinux.h it compiles against.

clang compiles, llvm-strip drops DWARF, bpftool turns the kernel's BTF into
vmlinux.h, and libbpf-dev provides <bpf/bpf_helpers.h> and friends; the
private toolchain of `make toolchain` (compiler/private.py), when there,
provides current libbpf headers and bpftool. vmlinux.h (and a precompiled
form of it, for fast AST dumps) is cached by the SHA-256 of the BTF it came
from and the version of the bpftool that wrote it, so a kernel upgrade gets a
fresh header by itself, and so does a bpftool that writes more (7.5 adds
kfunc prototypes that 7.1 leaves out).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import cache
from ..errors import CompileError, ToolMissingError, UsageError
from ..external import find_bpftool, find_program
from ..files import FileTooLarge, NotRegularFile, RefusedFile, open_regular, read_limited, read_regular
from ..format.escape import escape_text
from ..format.units import size_text
from .private import Prefix, find_prefix

KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")
# What --vmlinux (or the kernel's BTF) may be, by kind. A vmlinux.h is held in
# memory and copied into the cache: this kernel's is 2.8 MB. A kernel's raw BTF
# is 5.5 MB here (/sys/kernel/btf/vmlinux, a regular sysfs file of its true
# size). An ELF vmlinux keeping its DWARF is 0.3-1 GB; BTF and ELF files are
# only hashed, 1 MiB at a time, and bpftool reads them itself, so memory stays
# flat and the caps bound only the time hashing takes (about 2 s a GiB).
MAX_HEADER = 64 << 20
MAX_BTF = 64 << 20
MAX_ELF = 2 << 30
HASH_CHUNK = 1 << 20
LIBBPF_HEADER = "bpf/bpf_helpers.h"
SYSTEM_INCLUDE_DIRS = ("/usr/local/include", "/usr/include")
BTF_MAGIC_LE, BTF_MAGIC_BE = b"\x9f\xeb", b"\xeb\x9f"
TOOL_TIMEOUT_S = 300
KEEP_PCH = 6

# `uname -m` spellings to the names libbpf's bpf_tracing.h expects in
# -D__TARGET_ARCH_<arch>.
ARCHES = {
    "x86_64": "x86", "i386": "x86", "i686": "x86", "amd64": "x86",
    "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "armv6l": "arm", "arm": "arm",
    "ppc64le": "powerpc", "ppc64": "powerpc", "s390x": "s390", "riscv64": "riscv",
    "mips": "mips", "mips64": "mips", "loongarch64": "loongarch", "sparc64": "sparc",
}


def target_arch(requested: str | None = None) -> str:
    """The __TARGET_ARCH_ name for `requested` (either spelling), else this machine's."""
    name = (requested or platform.machine()).strip().lower()
    if name in ARCHES:
        return ARCHES[name]
    if name in ARCHES.values():
        return name
    if requested is None:
        raise CompileError(f"unknown machine architecture '{name}': pass --arch (one of "
                           f"{', '.join(sorted(set(ARCHES.values())))})")
    raise UsageError(f"unknown architecture '{requested}': use one of {', '.join(sorted(set(ARCHES.values())))}")


def _versioned(name: str) -> list[str]:
    return [name] + [f"{name}-{v}" for v in range(20, 10, -1)]


@dataclass(frozen=True)
class Toolchain:
    clang: str
    llvm_strip: str
    prefix: Prefix | None = None  # make toolchain's libbpf headers and bpftool

    @classmethod
    def find(cls) -> Toolchain:
        clang = find_program(_versioned("clang"), "clang", "PYEUNOMIA_CLANG")
        strip_names = _versioned("llvm-strip")
        # Prefer the llvm-strip of clang's own version when clang is versioned.
        suffix = os.path.basename(clang).removeprefix("clang")
        if suffix.startswith("-"):
            strip_names.insert(0, "llvm-strip" + suffix)
        return cls(clang, find_program(strip_names, "llvm", "PYEUNOMIA_LLVM_STRIP"), find_prefix())

    @property
    def include_flags(self) -> list[str]:
        """The private headers, searched after the user's -I and before /usr/include."""
        return ["-isystem", self.prefix.include] if self.prefix is not None else []

    @property
    def bpftool(self) -> str | None:
        """The private bpftool (PYEUNOMIA_BPFTOOL still comes first: external.find_bpftool)."""
        return self.prefix.bpftool if self.prefix is not None else None


def check_libbpf_headers(include_dirs: list[str]) -> str:
    """The directory whose libbpf headers clang will use; they must be somewhere it looks."""
    for d in [*include_dirs, *SYSTEM_INCLUDE_DIRS]:
        if os.path.isfile(os.path.join(d, LIBBPF_HEADER)):
            return d
    raise ToolMissingError(f"<{LIBBPF_HEADER}> (libbpf's headers)", "libbpf-dev")


def bpftool_version(bpftool: str) -> str:
    """'7.5.0' from `bpftool version` (4-5 ms here); '' when it will not say."""
    try:
        done = subprocess.run([bpftool, "version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    # "bpftool v7.5.0" (7.1 names itself by its argv[0]: "/usr/sbin/bpftool v7.1.0")
    found = re.match(r"\S*bpftool v(\d+(?:\.\d+)*)\s", done.stdout.decode("utf-8", "replace"))
    return found.group(1) if found else ""


def cache_root() -> Path:
    return Path(cache.cache_root())


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        cache.write_atomically(str(path), data)
    except OSError as e:
        raise CompileError(f"cannot write the cache at {path.parent}: {e.strerror}: "
                           "set XDG_CACHE_HOME to a writable directory") from None


def _dump_btf_as_c(bpftool: str, btf_path: str) -> bytes:
    try:
        done = subprocess.run([bpftool, "btf", "dump", "file", btf_path, "format", "c"],
                              capture_output=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompileError(f"bpftool could not run: {e}") from None
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CompileError(f"bpftool cannot turn {btf_path} into vmlinux.h: "
                           f"{detail[-1] if detail else 'no output'}")
    return done.stdout


def _cached(digest: str, data: bytes | None = None, generate_from: str | None = None,
            bpftool: str | None = None) -> Path:
    """The cached vmlinux.h under `digest`: `data` itself, or generated by
    bpftool (`bpftool`, else the system's) from the BTF or ELF file
    `generate_from`, under `digest` and that bpftool's version."""
    if generate_from is not None:
        bpftool = find_bpftool(bpftool)
        digest = hashlib.sha256(f"{digest}\0bpftool {bpftool_version(bpftool)}".encode()).hexdigest()
    header = cache_root() / "vmlinux" / digest[:24] / "vmlinux.h"
    if not header.is_file():
        made = _dump_btf_as_c(bpftool, generate_from) if generate_from and bpftool else None
        _write_atomically(header, made if made is not None else data or b"")
    return header


def _cached_by_content(data: bytes) -> Path:
    return _cached(hashlib.sha256(data).hexdigest(), data)


class _Oversize(FileTooLarge):
    def __init__(self, what: str, limit: int):
        super().__init__(limit)
        self.what = what


def _vmlinux_file(path: str, bpftool: str | None = None) -> Path:
    """The cached vmlinux.h for the vmlinux.h, BTF or ELF file at `path`.
    Raises OSError, NotRegularFile, or _Oversize past its kind's cap."""
    fd, st = open_regular(path, 1 << 62)  # its kind's cap, once the first bytes tell its kind
    try:
        magic = os.pread(fd, 4, 0)
        if magic[:2] in (BTF_MAGIC_LE, BTF_MAGIC_BE) or magic == b"\x7fELF":
            what, cap = ("an ELF image", MAX_ELF) if magic == b"\x7fELF" else ("a BTF file", MAX_BTF)
            if st.st_size > cap:
                raise _Oversize(what, cap)
            digest, got = hashlib.sha256(), 0
            buffer = bytearray(HASH_CHUNK)  # one buffer: sysfs gives 4 KiB a read, 1350 reads for the kernel's BTF
            view = memoryview(buffer)
            while n := os.readv(fd, [buffer]):
                got += n
                if got > cap:
                    raise _Oversize(what, cap)
                digest.update(view[:n])
            return _cached(digest.hexdigest(), generate_from=path, bpftool=bpftool)
        if st.st_size > MAX_HEADER:
            raise _Oversize("a vmlinux.h", MAX_HEADER)
        try:
            data = read_limited(fd, st.st_size, MAX_HEADER)
        except FileTooLarge:
            raise _Oversize("a vmlinux.h", MAX_HEADER) from None
        return _cached_by_content(data)
    finally:
        os.close(fd)


def vmlinux_header(override: str | None = None, bpftool: str | None = None) -> Path:
    """A directory's vmlinux.h for `#include <vmlinux.h>`: from `override`
    (a vmlinux.h, or a BTF or ELF file to generate it from with `bpftool`,
    else the system's), else from the running kernel's BTF. Cached by content
    hash (and bpftool's version). Only a regular file is read (a FIFO or
    /dev/zero is refused unread), within its kind's cap."""
    if override is not None:
        shown = escape_text(override)
        try:
            return _vmlinux_file(override, bpftool)
        except NotRegularFile as e:
            raise UsageError(f"--vmlinux {shown}: not a regular file ({e.kind}): pass a vmlinux.h, or the "
                             "kernel's BTF or ELF image") from None
        except _Oversize as e:
            raise UsageError(f"--vmlinux {shown}: {e.what} over {size_text(e.limit)} is no kernel's: "
                             "check the path") from None
        except OSError as e:
            raise UsageError(f"--vmlinux {shown}: cannot read: {e.strerror}") from None
    try:
        return _vmlinux_file(str(KERNEL_BTF), bpftool)
    except (OSError, RefusedFile):
        raise CompileError(f"this kernel exposes no BTF at {KERNEL_BTF}: pass --vmlinux PATH to a vmlinux.h "
                           "made for the target kernel") from None


def cached_header(path: Path) -> Path:
    """`path` itself if it is in the cache, else a copy there, by content:
    precompiled headers record their input's path and time, and a copy that
    never changes keeps one PCH per distinct vmlinux.h instead of one per
    directory it was found in."""
    try:
        path.resolve().relative_to(cache_root().resolve())
        return path
    except ValueError:
        pass
    try:
        return _cached_by_content(read_regular(path, MAX_HEADER))
    except (OSError, RefusedFile):
        return path


def precompiled_header(clang: str, header: Path, flags: list[str]) -> Path | None:
    """`header` (a vmlinux.h) precompiled with `flags`, cached; None when
    clang cannot make one.

    Only the AST dump for doc comments uses it: clang does not dump what it
    reads lazily from a PCH, which cuts that dump from ~180 MB to ~1 MB.
    A PCH records its header's path, size and time, so all three are in the key.
    """
    try:
        tool, source = os.stat(clang), os.stat(header)
    except OSError:
        return None
    identity = "\0".join([os.path.realpath(clang), str(tool.st_size), str(tool.st_mtime_ns),
                          os.path.realpath(header), str(source.st_size), str(source.st_mtime_ns), *flags])
    pch = cache_root() / "pch" / f"vmlinux-{hashlib.sha256(identity.encode()).hexdigest()[:24]}.pch"
    if pch.is_file():
        return pch
    try:
        pch.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    tmp = pch.with_name(f".tmp-{os.getpid()}-{pch.name}")
    try:
        done = subprocess.run([clang, *flags, "-x", "c-header", str(header), "-o", str(tmp)],
                              capture_output=True, timeout=TOOL_TIMEOUT_S, check=False)
        if done.returncode != 0:
            return None
        os.replace(tmp, pch)
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        if tmp.exists():
            tmp.unlink()
    _prune(pch.parent, keep=KEEP_PCH)
    return pch


def _prune(directory: Path, keep: int) -> None:
    """Each PCH is ~15 MB and a new one comes with each new set of cflags or
    clang: keep the most recently made ones. A build that loses its PCH to
    another's pruning falls back to the slow AST dump, so this cannot break one."""
    try:
        found = sorted(directory.glob("vmlinux-*.pch"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in found[keep:]:
            old.unlink()
    except OSError:
        pass
