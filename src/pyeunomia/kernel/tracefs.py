"""Make sure tracefs is mounted: libbpf resolves tracepoint ids through it."""

from __future__ import annotations

import os

from ..errors import MissingPrivilegeError, UnsupportedFeatureError
from .caps import has_privilege

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
        # mount(8) reports EPERM only as text; without CAP_SYS_ADMIN that is what it was
        if not has_privilege("CAP_SYS_ADMIN"):
            raise MissingPrivilegeError("CAP_SYS_ADMIN", "mounting tracefs", _EPERM) from None
        raise UnsupportedFeatureError("tracepoints", f"tracefs is not mounted and mounting it failed: {hint}") from None
    if not tracefs_ready():
        raise UnsupportedFeatureError("tracepoints", f"tracefs shows no events at {TRACEFS}: {hint}")
