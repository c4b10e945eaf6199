"""The one line that says why a load failed, found in libbpf's log.

bpf_object__load returns one errno for the whole object, and libbpf's last
line is always "failed to load object": neither names the cause. The cause
is an earlier line, about one program or one map:

    prog 'md_flush_request': failed to find kernel BTF type ID of 'md_flush_request': -3
    map 'counts': failed to create: Invalid argument(-22)

(the errno alone read "No such process" and "Invalid argument"). The log
is what runner/loader.py's LibbpfLog keeps of a load (warnings and info
lines, at most 200): searched once, on failure only.
"""

from __future__ import annotations

import os
import re

from ..errors import KernelError
from ..format.escape import escape_text
from ..format.objspec import MAP_RINGBUF, MapSpec
from ..kernel import features

_MISSING_TARGET = re.compile(r"prog '([^']+)': failed to find kernel BTF type ID of '([^']+)'")
# libbpf 1.0-1.4 write "Invalid argument(-22)", later ones "-EINVAL"
_MAP_FAILED = re.compile(r"map '([^']+)': failed to create: ([^\n]+)")
_STRERROR = re.compile(r"(.+?)\s*\((-?\d+)\)")
_PROG_LINE = re.compile(r"(?:libbpf: )?prog '([^']+)': (.+)")
# libbpf's lines that only say that something failed, never why
_GENERIC = ("failed to load", "failed to prepare load attributes", "BPF program load failed",
            "-- BEGIN PROG LOAD LOG --", "-- END PROG LOAD LOG --", "relo #", "found data", "found map")
_PAGE = 4096


def explained(log: str, prog: str, errno: int, maps: list[MapSpec] | None = None) -> KernelError:
    """The error for a failed load whose libbpf log is `log`; `prog` the
    program libbpf named ('' when none), `maps` the object's declarations
    (for what is wrong with a map the kernel would not create)."""
    missing = _MISSING_TARGET.search(log)
    if missing:
        name, target = missing.group(1), missing.group(2)
        return KernelError(
            f"loading program '{escape_text(name)}' failed: libbpf: failed to find kernel BTF type ID of "
            f"'{escape_text(target)}': this kernel's BTF does not describe it (no such function or tracepoint "
            "here, or its module is not loaded, or the kernel is too old to give modules BTF)", errno)
    made = _MAP_FAILED.search(log)
    if made:
        name, why, code = made.group(1), made.group(2).strip(), errno
        numbered = _STRERROR.fullmatch(why)
        if numbered:
            why, code = numbered.group(1), abs(int(numbered.group(2)))
        spec = next((m for m in maps or [] if m.name == name), None)
        hint = _map_hint(spec) if spec is not None else ""
        return KernelError(f"creating map '{escape_text(name)}' failed: {escape_text(why)}"
                           f"{f' ({hint})' if hint else ''}", code)
    detail = _detail(log, prog)
    where = f"program '{escape_text(prog)}'" if prog else "the BPF object"
    suffix = f" (libbpf: {escape_text(detail)})" if detail else ""
    return KernelError(f"loading {where} failed: {os.strerror(errno)}{suffix}", errno)


def _map_hint(spec: MapSpec) -> str:
    if spec.max_entries == 0:
        return f"its max_entries is 0: a {spec.type_name} map needs at least 1"
    if spec.type == MAP_RINGBUF and (spec.max_entries % _PAGE or spec.max_entries & (spec.max_entries - 1)):
        return f"a ring buffer's max_entries ({spec.max_entries}) must be a power of 2 and a multiple of {_PAGE}"
    if spec.type == MAP_RINGBUF and not features.has_ringbuf():  # probed on this failure path only
        return "this kernel has no ring buffer maps: Linux 5.8 brought them"
    return f"{spec.type_name}, max_entries {spec.max_entries}"


def _detail(log: str, prog: str) -> str:
    """The first specific line about `prog` (or any line, without one),
    else libbpf's last line."""
    lines = [line.strip().removeprefix("libbpf: ") for line in log.splitlines() if line.strip()]
    for line in lines:
        m = _PROG_LINE.fullmatch(line)
        if m and (not prog or m.group(1) == prog) and not any(g in m.group(2) for g in _GENERIC):
            return line
    return lines[-1] if lines else ""
