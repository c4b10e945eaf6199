"""The one attach policy, used by ecli, opensnoop and the exporter alike:
which of a package's programs this kernel can take, and how each program
is attached by its section.

- A program may have a compat alternative: a program named NAME__compat is
  loaded instead of NAME when this kernel lacks a helper NAME calls and the
  alternative does not (feature probes: format/insns.py finds the helpers in
  the instructions, kernel/features.py asks the kernel). A __compat program
  with no NAME of its own is a companion (a sys_enter half, say): loaded
  exactly when some compat alternative is. Programs without alternatives
  cost no probe.
- Programs whose tracepoint this kernel lacks are not loaded (arm64 has no
  open(2) or creat(2); a newer kernel adds tracepoints an older lacks), as
  long as one program is left: a package none of whose programs fit fails
  to attach with the kernel's own reason instead.
- xdp and tc programs need an interface (`--ifname`); tc attaches through a
  tcx link, ingress unless the section says egress.
- kprobe-family sections need kprobe support, named when it is missing.
- Everything else attaches by its SEC() name through libbpf.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ..errors import AttachError, KernelError, MissingPrivilegeError, UnsupportedFeatureError
from ..format.insns import program_helpers
from ..format.objspec import ObjectSpec
from ..kernel import features, libbpf
from ..kernel.tracefs import TRACEFS, ensure_tracefs

TRACEPOINT_PREFIXES = ("tp/", "tracepoint/")
XDP_PREFIXES = ("xdp",)
TC_PREFIXES = ("tc", "classifier")
KPROBE_PREFIXES = ("kprobe", "kretprobe", "ksyscall", "kretsyscall")
BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47
COMPAT_SUFFIX = "__compat"
_ENOENT, _EOPNOTSUPP = 2, 95


def loadable_programs(spec: ObjectSpec, types: Mapping[str, int]) -> list[str] | None:
    """The programs to load (see the module docstring); None: all of them.
    `types`: each program's BPF program type, as libbpf opened it.
    Privileges are checked first: without them tracefs looks empty, and the
    error would blame the kernel."""
    features.require_bpf_privileges()
    chosen = _choose_alternatives(spec, types)
    programs = [p for p in spec.programs if chosen is None or p.name in chosen]
    tracepoints = {p.name: p.section.split("/", 1)[1] for p in programs
                   if p.section.startswith(TRACEPOINT_PREFIXES) and "/" in p.section}
    if not tracepoints:
        return None if chosen is None else [p.name for p in programs]
    ensure_tracefs()
    missing = {name for name, event in tracepoints.items()
               if not os.path.isdir(os.path.join(TRACEFS, "events", event))}
    if not missing or len(missing) == len(programs):
        return None if chosen is None else [p.name for p in programs]
    return [p.name for p in programs if p.name not in missing]


def _choose_alternatives(spec: ObjectSpec, types: Mapping[str, int]) -> set[str] | None:
    """The programs kept once each NAME / NAME__compat pair is decided; None
    when the object has no compat programs."""
    by_name = {p.name: p for p in spec.programs}
    compat = {name for name in by_name if name.endswith(COMPAT_SUFFIX)}
    if not compat:
        return None
    chosen = {name for name in by_name if name not in compat}
    for name in sorted(chosen):
        alternative = by_name.get(name + COMPAT_SUFFIX)
        if alternative is None:
            continue
        needs = program_helpers(spec, by_name[name]) - program_helpers(spec, alternative)
        prog_type = types.get(name, 0)
        if not all(features.has_helper(prog_type, helper) for helper in sorted(needs)):
            chosen.discard(name)
            chosen.add(alternative.name)
    if chosen & compat:
        chosen |= {name for name in compat if name.removesuffix(COMPAT_SUFFIX) not in by_name}
    return chosen


def needs_tracefs(sections: list[str]) -> bool:
    return any(s.startswith(TRACEPOINT_PREFIXES) for s in sections)


def attach(name: str, section: str, handle: int, ifname: str | None) -> tuple[str, int]:
    """Attach one loaded program: ("link", a libbpf link) or ("fd", a kernel
    link's fd); both detach when destroyed or closed."""
    if section.startswith(XDP_PREFIXES) or section.startswith(TC_PREFIXES):
        ifindex = _ifindex(name, section, ifname)
        if section.startswith(XDP_PREFIXES):
            return "link", _call(name, section, lambda: libbpf.program_attach_xdp(handle, ifindex))
        kind = BPF_TCX_EGRESS if "egress" in section else BPF_TCX_INGRESS
        fd = libbpf.program_fd(handle)
        return "fd", _call(name, section, lambda: libbpf.link_create(fd, ifindex, kind))
    if section.startswith(KPROBE_PREFIXES) and not features.has_kprobes():
        raise UnsupportedFeatureError("kprobes", f"program '{name}' ({section}) needs them")
    return "link", _call(name, section, lambda: libbpf.program_attach(handle))


def _ifindex(name: str, section: str, ifname: str | None) -> int:
    if not ifname:
        raise AttachError(name, section, "needs a network interface: pass --ifname IFACE (e.g. --ifname lo)")
    import socket  # only for xdp and tc: socket costs every other start-up ~1 ms

    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        raise AttachError(name, section, f"no network interface named '{ifname}'") from None


def _call(name: str, section: str, call: Callable[[], int]) -> int:
    try:
        return int(call())
    except MissingPrivilegeError:
        raise
    except KernelError as e:
        reason = {
            _ENOENT: "the attach target does not exist on this kernel (ENOENT)",
            _EOPNOTSUPP: "libbpf cannot attach this section by itself (EOPNOTSUPP)",
        }.get(e.errno, str(e))
        raise AttachError(name, section, reason, e.errno) from None
