"""The private toolchain that `make toolchain` installs for ecc
(scripts/toolchain.py): libbpf's headers 1.4+ and bpftool 7.5+ from Debian's
bookworm-backports, unpacked in a prefix of their own beside the system's
packages (Debian 12 has libbpf-dev 1.1 and bpftool 7.1, which lack
bpf_ksym_exists, BPF_UPROBE and the kfunc prototypes current programs use).

ecc searches its headers after the user's -I directories and before
/usr/include, and makes vmlinux.h with its bpftool (bpftool 7.5 declares the
kernel's kfuncs there, 7.1 does not). Only ecc uses it: the runtime keeps the
system's libbpf.so (1.0 and newer) and the system's bpftool.

Where: $PYEUNOMIA_TOOLCHAIN names a prefix (`system`: use the system's tools
only); otherwise <sys.prefix>/share/pyeunomia/toolchain, the link that
`make toolchain` puts in the venv. PYEUNOMIA_BPFTOOL still chooses bpftool.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from ..errors import UsageError
from ..format.escape import escape_text

ENV = "PYEUNOMIA_TOOLCHAIN"
SYSTEM = "system"
LINK = ("share", "pyeunomia", "toolchain")
HELPERS = os.path.join("bpf", "bpf_helpers.h")
VERSION_HEADER = os.path.join("bpf", "libbpf_version.h")


@dataclass(frozen=True)
class Prefix:
    root: str  # resolved: diagnostics and line info name the same path whichever venv links to it
    include: str
    bpftool: str | None

    @property
    def libbpf(self) -> tuple[int, int] | None:
        return headers_version(self.include)


def find_prefix() -> Prefix | None:
    """The private toolchain, or None to use the system's tools."""
    given = os.environ.get(ENV, "")
    if given == SYSTEM:
        return None
    path = given or os.path.join(sys.prefix, *LINK)
    include = os.path.join(path, "usr", "include")
    if not os.path.isfile(os.path.join(include, HELPERS)):
        if given:
            raise UsageError(f"${ENV}={escape_text(given)}: no libbpf headers in {escape_text(include)}: "
                             f"run make toolchain, or set it to '{SYSTEM}' for the system's tools")
        return None
    root = os.path.realpath(path)
    bpftool = os.path.join(root, "usr", "sbin", "bpftool")
    return Prefix(root, os.path.join(root, "usr", "include"), bpftool if os.access(bpftool, os.X_OK) else None)


def headers_version(include: str) -> tuple[int, int] | None:
    """(MAJOR, MINOR) of the libbpf headers in `include` (libbpf_version.h
    appeared in libbpf 0.6; older headers give None)."""
    try:
        with open(os.path.join(include, VERSION_HEADER), encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 16)
    except OSError:
        return None
    major = re.search(r"#define\s+LIBBPF_MAJOR_VERSION\s+(\d+)", text)
    minor = re.search(r"#define\s+LIBBPF_MINOR_VERSION\s+(\d+)", text)
    return (int(major.group(1)), int(minor.group(1))) if major and minor else None
