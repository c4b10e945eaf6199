"""Make sure tracefs is mounted: libbpf resolves tracepoint ids through it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import MissingPrivilegeError, UnsupportedFeatureError

if TYPE_CHECKING:
    from ..format.package import Package

TRACEFS = "/sys/kernel/tracing"
DEBUGFS_TRACING = "/sys/kernel/debug/tracing"
_EPERM = 1


def tracefs_ready() -> bool:
    return os.path.isdir(os.path.join(TRACEFS, "events")) or os.path.isdir(os.path.join(DEBUGFS_TRACING, "events"))


def ensure_tracefs() -> None:
    """Mount tracefs at /sys/kernel/tracing if it is not mounted yet. Without
    the privilege to mount it (or to look into it: an ordinary user sees no
    events there) the error names the capability, not a missing feature."""
    if tracefs_ready():
        return
    import subprocess  # only on a fresh machine: keeps it out of every start-up

    hint = f"mount it with 'mount -t tracefs tracefs {TRACEFS}'"
    try:
        subprocess.run(["mount", "-t", "tracefs", "tracefs", TRACEFS],
                       check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        from . import libbpf

        # mount(8) reports EPERM only as text; without CAP_SYS_ADMIN that is what it was
        if not libbpf.has_privilege("CAP_SYS_ADMIN"):
            raise MissingPrivilegeError("CAP_SYS_ADMIN", "mounting tracefs", _EPERM) from None
        raise UnsupportedFeatureError("tracepoints", f"tracefs is not mounted and mounting it failed: {hint}") from None
    if not tracefs_ready():
        raise UnsupportedFeatureError("tracepoints", f"tracefs shows no events at {TRACEFS}: {hint}")


def available_programs(package: Package) -> list[str] | None:
    """The programs to load: every one, except tracepoint programs whose
    tracepoint this kernel lacks (arm64 has no open(2) or creat(2)), as long
    as one is left. None: load them all. Called just before a load, so the
    privileges loading needs are checked first: without them tracefs looks
    missing, and the error would blame the kernel."""
    from .features import require_bpf_privileges

    require_bpf_privileges()
    programs = package.spec.programs
    tracepoints = {p.name: p.section.split("/", 1)[1] for p in programs
                   if p.section.startswith(("tracepoint/", "tp/")) and "/" in p.section}
    if not tracepoints:
        return None
    ensure_tracefs()
    missing = {name for name, event in tracepoints.items() if not os.path.isdir(os.path.join(TRACEFS, "events", event))}
    if not missing or len(missing) == len(programs):
        return None
    return [p.name for p in programs if p.name not in missing]
