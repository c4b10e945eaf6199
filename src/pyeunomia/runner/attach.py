"""The one attach policy, used by ecli, opensnoop and the exporter alike:
which of a package's programs this kernel can take, and how each program
is attached by its section.

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
from collections.abc import Callable

from ..errors import AttachError, KernelError, MissingPrivilegeError, UnsupportedFeatureError
from ..format.objspec import ProgramSpec
from ..kernel import features, libbpf
from ..kernel.tracefs import TRACEFS, ensure_tracefs

TRACEPOINT_PREFIXES = ("tp/", "tracepoint/")
XDP_PREFIXES = ("xdp",)
TC_PREFIXES = ("tc", "classifier")
KPROBE_PREFIXES = ("kprobe", "kretprobe", "ksyscall", "kretsyscall")
BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47
_ENOENT, _EOPNOTSUPP = 2, 95


def loadable_programs(programs: list[ProgramSpec]) -> list[str] | None:
    """The programs to load (see the module docstring); None: all of them.
    Privileges are checked first: without them tracefs looks empty, and the
    error would blame the kernel."""
    features.require_bpf_privileges()
    tracepoints = {p.name: p.section.split("/", 1)[1] for p in programs
                   if p.section.startswith(TRACEPOINT_PREFIXES) and "/" in p.section}
    if not tracepoints:
        return None
    ensure_tracefs()
    missing = {name for name, event in tracepoints.items()
               if not os.path.isdir(os.path.join(TRACEFS, "events", event))}
    if not missing or len(missing) == len(programs):
        return None
    return [p.name for p in programs if p.name not in missing]


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
