"""The outside programs pyeunomia runs, and where they are found: clang and
llvm-strip for ecc, bpftool for ecc's vmlinux.h and for the loader's
minimal-BTF cache. Shared by the compiler and the runner, so neither imports
the other. An environment variable (PYEUNOMIA_CLANG, PYEUNOMIA_LLVM_STRIP,
PYEUNOMIA_BPFTOOL) names a program to use instead."""

from __future__ import annotations

import os

from .errors import ToolMissingError

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


def find_bpftool() -> str:
    return find_program(["bpftool"], "bpftool", "PYEUNOMIA_BPFTOOL")
