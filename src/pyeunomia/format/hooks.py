"""Which kernel event a program's SEC() name hooks, and how good a way of
hooking it that attach type is: what tells twins (alternatives written for
kernels that differ) from programs that do different work. Pure.

Programs hook the same kernel event when one of these holds:

- tp_btf/T, raw_tp/T (raw_tracepoint/T) and tp/C/T (tracepoint/C/T): one
  tracepoint T, whatever its category (raw and BTF-typed tracepoints are
  named without one). libbpf-tools' runqslower, biolatency, cpudist... carry
  a tp_btf and a raw_tp program per tracepoint and load one (probe_tp_btf).
- fentry/F and kprobe/F (no +offset): entry to function F; fexit/F and
  kretprobe/F: its return (tcpconnlat, filelife, fsslower... pick with
  fentry_can_attach).
- A system call S: fentry or kprobe on its wrapper (__x64_sys_S, __se_sys_S,
  sys_S...), ksyscall/S, and tracepoint syscalls/sys_enter_S; the returns
  likewise (fexit, kretprobe, kretsyscall/S, sys_exit_S). 32-bit entries
  (__ia32_sys_S, __x32_compat_sys_S) are other callers: other events.

Anything else (uprobes, xdp, perf_event...) hooks no shared event here.

The preference, best first (RANK): fentry, fexit and tp_btf (a BPF
trampoline or a direct call, arguments typed by BTF, no copy), raw_tp (a
direct call, untyped arguments), kprobe and ksyscall (an ftrace or int3 hit
on the function itself), tracepoint (the perf trace path, which copies the
arguments; and a syscall tracepoint turns on the slow syscall path for every
system call of every task, where a kprobe costs only callers of S).
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Attach kinds by their SEC() prefix (libbpf's names, sleepable forms included).
_KINDS = {
    "fentry": "fentry", "fentry.s": "fentry", "fexit": "fexit", "fexit.s": "fexit", "tp_btf": "tp_btf",
    "raw_tp": "raw_tp", "raw_tracepoint": "raw_tp", "kprobe": "kprobe", "kretprobe": "kretprobe",
    "ksyscall": "ksyscall", "kretsyscall": "kretsyscall", "tp": "tracepoint", "tracepoint": "tracepoint",
}
RANK = {"fentry": 0, "fexit": 0, "tp_btf": 0, "raw_tp": 1, "kprobe": 2, "kretprobe": 2, "ksyscall": 2,
        "kretsyscall": 2, "tracepoint": 3}
_SYSCALL_WRAPPER = re.compile(r"(?:__(?:x64|arm64|s390x|riscv|powerpc|loongarch|se|do)_)?sys_(\w+)")


class Hook(NamedTuple):
    """One kernel event: ("tracepoint", T), ("entry" or "exit", F) for a
    function, ("entry" or "exit", "syscall S") for a system call."""

    kind: str
    target: str

    def __str__(self) -> str:
        if self.kind == "tracepoint":
            return f"tracepoint {self.target}"
        where = "return from" if self.kind == "exit" else "entry to"
        return f"{where} {self.target}" + ("" if self.target.startswith("syscall ") else "()")


class Attach(NamedTuple):
    """How a program hooks its event: `kind` (a key of RANK), `target` as
    the section names it (a function, a tracepoint, a syscall), `hook`."""

    kind: str
    target: str
    hook: Hook

    @property
    def rank(self) -> int:
        return RANK[self.kind]


def _function(name: str) -> str:
    m = _SYSCALL_WRAPPER.fullmatch(name)
    return f"syscall {m.group(1)}" if m else name


def attach_of(section: str) -> Attach | None:
    """The event `section` hooks and how, or None (no event shared with
    another attach type, or a form this module does not group)."""
    prefix, _, rest = section.partition("/")
    kind = _KINDS.get(prefix)
    if kind is None or not rest or any(c in rest for c in "+:%"):
        return None  # kprobe/F+0x10 is another event; module:function forms are left alone
    if kind == "tracepoint":
        category, _, event = rest.partition("/")
        if not event or "/" in event:
            return None
        if category == "syscalls" and event.startswith(("sys_enter_", "sys_exit_")):
            which, _, syscall = event[4:].partition("_")
            return Attach(kind, event, Hook("entry" if which == "enter" else "exit", f"syscall {syscall}"))
        return Attach(kind, event, Hook("tracepoint", event))
    if "/" in rest:
        return None
    if kind in ("tp_btf", "raw_tp"):
        return Attach(kind, rest, Hook("tracepoint", rest))
    if kind in ("ksyscall", "kretsyscall"):
        return Attach(kind, rest, Hook("entry" if kind == "ksyscall" else "exit", f"syscall {rest}"))
    return Attach(kind, rest, Hook("exit" if kind in ("fexit", "kretprobe") else "entry", _function(rest)))
