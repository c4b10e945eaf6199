"""The outside programs pyeunomia runs, and where they are found: clang and
llvm-strip for ecc, bpftool for ecc's vmlinux.h and for the loader's
minimal-BTF cache. Shared by the compiler and the runner, so neither imports
the other. An environment variable (PYEUNOMIA_CLANG, PYEUNOMIA_LLVM_STRIP,
PYEUNOMIA_BPFTOOL) names a program to use instead."""

from __future__ import annotations

import os

from .errors import ToolError, ToolMissingError

SBIN = "/usr/sbin:/sbin:/usr/local/sbin"  # bpftool lives in sbin, off an ordinary user's PATH


def find_program(names: list[str], debian_package: str, env_var: str) -> str:
    """The first of `names` found on PATH (or in sbin); ToolMissingError
    names the Debian package that has it."""
    import shutil  # not at import: the loader imports this module, and shutil pulls in bz2 and lzma (~2 ms)

    override = os.environ.get(env_var)
    if override:
        path = shutil.which(override)
        if path is None:
            raise ToolMissingError(f"{override} (from ${env_var})", debian_package)
        return path
    for name in names:
        path = shutil.which(name) or shutil.which(name, path=SBIN)
        if path:
            return path
    raise ToolMissingError(names[0], debian_package)


def find_bpftool(preferred: str | None = None) -> str:
    """$PYEUNOMIA_BPFTOOL, else `preferred` (ecc's private toolchain's), else the system's."""
    if preferred and not os.environ.get("PYEUNOMIA_BPFTOOL"):
        return preferred
    return find_program(["bpftool"], "bpftool", "PYEUNOMIA_BPFTOOL")


MIN_CORE_BTF_TIMEOUT_S = 30  # measured: 0.02-0.03 s for a whole kernel's BTF (Debian 5.10 to 6.18)


def min_core_btf(obj: bytes, kernel_btf: str | bytes, timeout: float = MIN_CORE_BTF_TIMEOUT_S) -> bytes:
    """`bpftool gen min_core_btf`: the part of a kernel's BTF (a path, or the
    bytes themselves) that `obj`'s CO-RE relocations need. The object, the
    output and BTF given as bytes are memory files bpftool opens as
    /proc/self/fd/N: nothing is written to disk, so a process killed while
    bpftool works leaves nothing behind. Raises ToolMissingError, or
    ToolError with bpftool's last line."""
    import subprocess

    bpftool = find_bpftool()
    fds: list[int] = []
    try:
        src = _memory_file("pyeunomia-obj", obj, fds)
        btf = kernel_btf if isinstance(kernel_btf, str) else \
            f"/proc/self/fd/{_memory_file('pyeunomia-kernel-btf', kernel_btf, fds)}"
        out = _memory_file("pyeunomia-min-btf", b"", fds)
        try:
            done = subprocess.run([bpftool, "gen", "min_core_btf", btf, f"/proc/self/fd/{out}", f"/proc/self/fd/{src}"],
                                  pass_fds=tuple(fds), capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            raise ToolError(f"bpftool gen min_core_btf: {e}") from None
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ToolError(f"bpftool gen min_core_btf failed: {lines[-1] if lines else 'no message'}")
        return os.pread(out, os.fstat(out).st_size, 0)
    finally:
        for fd in fds:
            os.close(fd)


def _memory_file(name: str, data: bytes, fds: list[int]) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    fds.append(fd)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return fd
