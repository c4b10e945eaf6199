"""When clang's diagnostics come from an old toolchain, one line that says so
and what to do (`make toolchain`), put before the diagnostics themselves.

Two causes are recognised:
- a libbpf macro newer than the headers used (Debian 12's are 1.1), named
  in the diagnostics (which quote the lines that fail) or in the source
  outside comments: `int BPF_UPROBE(handle_entry)` with 1.1's headers is a
  valid old-style definition, and only its body's `ctx` fails;
- a kfunc that vmlinux.h does not declare: bpftool 7.5 writes the kernel's
  kfunc prototypes into vmlinux.h (under `#ifndef BPF_NO_KFUNC_PROTOTYPES`),
  bpftool 7.1 writes none, so clang calls the function undeclared.

Checked on bcc's libbpf-tools (58 sources, August 2026): with Debian 12's
headers and bpftool, bashreadline, gethostlatency, memleak and sigsnoop fail
and each gets this line; with make toolchain's they compile.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import CompileError, EunomiaError
from ..external import find_bpftool
from ..files import RefusedFile, read_regular
from .private import headers_version
from .toolchain import KERNEL_BTF, MAX_BTF, MAX_HEADER, Toolchain, bpftool_version, cache_root

# What each libbpf release added to its BPF-side headers (new #defines of
# bpf_helpers.h, bpf_tracing.h and bpf_core_read.h between the git tags
# v1.1.0 and v1.4.0; bpf_helper_defs.h gained no helper in that span).
NEWER: dict[tuple[int, int], tuple[str, ...]] = {
    (1, 2): ("bpf_ksym_exists", "BPF_UPROBE", "BPF_URETPROBE", "bpf_for", "bpf_for_each", "bpf_repeat",
             "__kptr_untrusted", "PT_REGS_PARM6", "PT_REGS_PARM7", "PT_REGS_PARM8", "PT_REGS_PARM6_CORE",
             "PT_REGS_PARM7_CORE", "PT_REGS_PARM8_CORE", "PT_REGS_PARM6_SYSCALL", "PT_REGS_PARM7_SYSCALL",
             "PT_REGS_PARM6_CORE_SYSCALL", "PT_REGS_PARM7_CORE_SYSCALL"),
    (1, 3): ("__percpu_kptr",),
    (1, 4): ("bpf_core_cast", "BPF_CORE_WRITE_BITFIELD", "__arg_ctx", "__arg_nonnull", "__arg_nullable",
             "__arg_trusted", "__arg_arena", "__ulong"),
}
KFUNC_PROTOTYPES_FROM = (7, 5)  # the bpftool this was checked with; 7.1 (Debian 12's) writes none
KFUNC_GUARD = b"BPF_NO_KFUNC_PROTOTYPES"
TODO = "run make toolchain (libbpf headers 1.4+, bpftool 7.5+)"
# clang 14 says "implicit declaration of function 'f'", clang 16+ "call to undeclared function 'f'".
# Calls only: an undeclared plain identifier is as often a macro's parameter that an old header dropped.
UNDECLARED = re.compile(r"(?:implicit declaration of function|call to undeclared function) '(\w+)'")
COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


@dataclass(frozen=True)
class Used:
    """What the failed build compiled with."""

    headers: tuple[int, int] | None  # libbpf headers' version (None: unknown, older than 0.6)
    headers_dir: str
    vmlinux: bytes | None  # the vmlinux.h the source included, if any
    bpftool: str  # the version of the bpftool that made it ('' when a user's vmlinux.h)
    kernel_btf: bytes | None  # the BTF vmlinux.h was made from, when known: are the names its functions?
    source: str = ""  # the program's text, comments left out


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def newer_than_headers(diagnostics: str, headers: tuple[int, int] | None) -> dict[tuple[int, int], list[str]]:
    """Identifiers of NEWER named in `diagnostics` that the headers predate, by release."""
    found: dict[tuple[int, int], list[str]] = {}
    for release, names in sorted(NEWER.items()):
        if headers is not None and headers >= release:
            continue
        hits = [n for n in names if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", diagnostics)]
        if hits:
            found[release] = hits
    return found


def undeclared_kfuncs(diagnostics: str, used: Used) -> list[str]:
    """Undeclared names that vmlinux.h would declare if its bpftool wrote kfuncs."""
    if used.vmlinux is None or KFUNC_GUARD in used.vmlinux:
        return []
    known = {n for names in NEWER.values() for n in names}
    names = []
    for name in UNDECLARED.findall(diagnostics):
        if name in known or name in names:
            continue
        if used.kernel_btf is not None and b"\0" + name.encode() + b"\0" not in used.kernel_btf:
            continue  # not a name the kernel has: a typo or a missing header, not a kfunc
        names.append(name)
    return names


def _bpftool_older(version: str) -> bool:
    numbers = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    return bool(numbers) and numbers < KFUNC_PROTOTYPES_FROM


def explain(diagnostics: str, used: Used) -> str | None:
    """The line to put first, or None when the toolchain is not to blame."""
    parts = []
    for release, names in newer_than_headers(f"{diagnostics}\n{used.source}", used.headers).items():
        have = version_text(used.headers) if used.headers else "older ones"
        parts.append(f"{', '.join(names)} need{'s' * (len(names) == 1)} libbpf headers {version_text(release)}+ "
                     f"(these are {have}, in {used.headers_dir})")
    kfuncs = undeclared_kfuncs(diagnostics, used)
    if kfuncs:
        listed = ", ".join(kfuncs)
        if used.bpftool and _bpftool_older(used.bpftool):
            parts.append(f"vmlinux.h declares no kfuncs ({listed}?): bpftool {used.bpftool} made it, "
                         f"{version_text(KFUNC_PROTOTYPES_FROM)}+ declares them")
        elif not parts:
            return (f"{listed}: not declared, and vmlinux.h declares no kfuncs: declare "
                    f"{'them' if len(kfuncs) > 1 else 'it'} as `extern ... __ksym;`")
    if not parts:
        return None
    return "; ".join(parts) + f": {TODO}"


@dataclass(frozen=True)
class Build:
    """Where the build looked: enough to tell what it compiled with."""

    tools: Toolchain
    headers_dir: str  # whose bpf/*.h clang used
    include_dirs: list[str]  # where `#include "vmlinux.h"` is looked for, in clang's order
    from_kernel: bool  # ecc made vmlinux.h from the running kernel's BTF (no --vmlinux)
    source: str  # the program's path

    def used(self) -> Used:
        """Reads vmlinux.h and the kernel's BTF: for the paths where something went wrong."""
        vmlinux = next((os.path.join(d, "vmlinux.h") for d in self.include_dirs
                        if os.path.isfile(os.path.join(d, "vmlinux.h"))), None)
        made = self.from_kernel and vmlinux is not None and \
            os.path.realpath(vmlinux).startswith(os.path.realpath(cache_root()) + os.sep)
        text = _read(self.source, MAX_HEADER) or b""
        return Used(headers_version(self.headers_dir), os.path.join(self.headers_dir, "bpf"),
                    _read(vmlinux, MAX_HEADER), bpftool_version(_bpftool(self.tools)) if made else "",
                    _read(str(KERNEL_BTF), MAX_BTF) if made else None,
                    COMMENTS.sub(" ", text.decode("utf-8", "replace")))


def explain_failure(what: str, diagnostics: str, build: Build) -> CompileError:
    """The error of a failed compile: `what`, then the toolchain's part in
    it when it has one, then clang's diagnostics."""
    hint = explain(diagnostics, build.used())
    body = diagnostics.rstrip() or "(no diagnostics)"
    return CompileError(f"{what}: {hint}\n{body}" if hint else f"{what}:\n{body}")


def explain_warnings(warnings: str, build: Build) -> str:
    """clang's warnings of a compile that worked, and a note when a function
    was declared implicitly for want of a current toolchain: the object
    would then fail to load (libbpf finds no such helper or kfunc)."""
    if not UNDECLARED.search(warnings):
        return warnings
    hint = explain(warnings, build.used())
    return warnings if hint is None else f"{warnings.rstrip()}\necc: warning: {hint}\n"


def _bpftool(tools: Toolchain) -> str:
    try:
        return find_bpftool(tools.bpftool)
    except EunomiaError:
        return ""


def _read(path: str | None, limit: int) -> bytes | None:
    if path is None:
        return None
    try:
        return read_regular(path, limit)
    except (OSError, RefusedFile):
        return None
