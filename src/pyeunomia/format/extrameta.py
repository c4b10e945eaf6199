"""Upstream's extra package keys: how a tc or xdp program attaches, and how a
buffer map's events are to be shown.

eunomia-bpf's ecc copies a program's doc comments into its entry of
`meta.bpf_skel.progs`, and bpf-loader-rs reads them when it attaches
(bpf-loader-lib/src/meta/mod.rs, TCProgExtraMeta and XDPProgExtraMeta;
skeleton/preload/attach/tc.rs and xdp.rs):

    {"name": "tc_ingress", "attach": "tc", "link": true,
     "tchook": {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"},
     "tcopts": {"handle": 1, "priority": 1}}
    {"name": "xdp_pass", "attach": "xdp", "link": true,
     "ifindex": 1, "flags": 0, "xdpopts": {"old_prog_fd": 0}}

Upstream's defaults: ifindex 1 (lo), BPF_TC_INGRESS, handle 1, priority 1,
flags 0; the runner takes all but handle and priority (runner/attach.py).
A map may carry `"intepreter"` (sic): "default_struct", or {"stack_trace":
{...}} for events printed as symbolized stacks.

Ours: a program's `"when"` (`/// @when measure_latency`: a bool global's
name, "!name", or a list of them, as for map columns) loads it only when
one of them is set. A hook costs the traced task even when the program
returns at once: syscount's sys_enter, needed only for -L, made every
syscall take the tracepoint path (+79 ns of BPF alone per syscall here).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import PackageError
from .mapmeta import when_names
from .package import Package

UPSTREAM_IFINDEX = 1
TC_ATTACH_POINTS = {"BPF_TC_INGRESS": "ingress", "BPF_TC_EGRESS": "egress", "BPF_TC_CUSTOM": "custom"}
XDP_FLAGS_ALL = 0x1F  # UPDATE_IF_NOEXIST, SKB_MODE, DRV_MODE, HW_MODE, REPLACE (linux/if_link.h)
DEFAULT_INTERPRETER = "default_struct"
TC_SECTION_PREFIXES = ("tc", "classifier")  # libbpf's tc, tc/ingress, tcx/egress, classifier, ...
XDP_SECTION_PREFIXES = ("xdp",)  # xdp, xdp.frags, xdp/devmap, ...
TC_KEYS = ("tchook", "tcopts")  # what upstream's loader reads from a tc program's entry
XDP_KEYS = ("ifindex", "flags", "xdpopts")  # and from an xdp program's
WHEN = "when"  # ours: load the program only when one of these bool globals is set


class TcMeta(NamedTuple):
    """What the package names; None where it names nothing."""

    ifindex: int | None
    attach_point: str | None  # "ingress", "egress" or "custom"
    handle: int | None = None
    priority: int | None = None


class XdpMeta(NamedTuple):
    ifindex: int | None
    flags: int = 0
    old_prog_fd: int = 0


def _program(package: Package, name: str) -> tuple[dict[str, Any], str]:
    skel = package.meta.raw.get("bpf_skel", {}) if isinstance(package.meta.raw, dict) else {}
    for i, p in enumerate(skel.get("progs", []) if isinstance(skel, dict) else []):
        if isinstance(p, dict) and p.get("name") == name:
            return p, f"{package.origin}: meta.bpf_skel.progs[{i}]"
    return {}, package.origin


def _int(d: dict[str, Any], key: str, where: str, low: int, high: int) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise PackageError(f"{where}: '{key}' must be an integer from {low} to {high}")
    return v


def _object(d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise PackageError(f"{where}: '{key}' must be an object")
    return v


def tc_meta(package: Package, name: str) -> TcMeta:
    """The program's tchook and tcopts, None for each key it leaves out."""
    return tc_keys(*_program(package, name))


def tc_keys(p: dict[str, Any], where: str) -> TcMeta:
    """tchook and tcopts of one program entry (a package's, or the keys ecc
    took from a doc comment); errors start with `where`."""
    hook, opts = _object(p, "tchook", where), _object(p, "tcopts", where)
    point = hook.get("attach_point")
    if point is not None and point not in TC_ATTACH_POINTS:
        raise PackageError(f"{where}.tchook: 'attach_point' must be one of {', '.join(TC_ATTACH_POINTS)}")
    handle = _int(opts, "handle", where + ".tcopts", 0, 0xFFFFFFFF)
    priority = _int(opts, "priority", where + ".tcopts", 0, 0xFFFF)
    return TcMeta(_int(hook, "ifindex", where + ".tchook", 1, 0x7FFFFFFF),
                  TC_ATTACH_POINTS[point] if point is not None else None, handle, priority)


def xdp_meta(package: Package, name: str) -> XdpMeta:
    return xdp_keys(*_program(package, name))


def xdp_keys(p: dict[str, Any], where: str) -> XdpMeta:
    """ifindex, flags and xdpopts of one program entry, as tc_keys."""
    flags = _int(p, "flags", where, 0, 0xFFFFFFFF)
    if flags is not None and flags & ~XDP_FLAGS_ALL:
        raise PackageError(f"{where}: 'flags' has bits no XDP_FLAGS_* names ({flags:#x})")
    old = _int(_object(p, "xdpopts", where), "old_prog_fd", where + ".xdpopts", 0, 0x7FFFFFFF)
    return XdpMeta(_int(p, "ifindex", where, 1, 0x7FFFFFFF), flags or 0, old or 0)


def interpreters(package: Package) -> list[tuple[str, str]]:
    """(map, interpreter) for each map that asks for other than plain fields."""
    skel = package.meta.raw.get("bpf_skel", {}) if isinstance(package.meta.raw, dict) else {}
    out = []
    for m in skel.get("maps", []) if isinstance(skel, dict) else []:
        if not isinstance(m, dict) or m.get("intepreter") in (None, DEFAULT_INTERPRETER):
            continue
        kind = m["intepreter"]
        label = next(iter(kind), "?") if isinstance(kind, dict) else str(kind)
        out.append((str(m.get("name", "?")), label))
    return out


def program_when(package: Package) -> dict[str, tuple[str, ...]]:
    """Program name -> the `when` names that load it, for the programs that
    have one."""
    skel = package.meta.raw.get("bpf_skel", {}) if isinstance(package.meta.raw, dict) else {}
    out = {}
    for i, p in enumerate(skel.get("progs", []) if isinstance(skel, dict) else []):
        if isinstance(p, dict) and WHEN in p and isinstance(p.get("name"), str):
            try:
                out[p["name"]] = when_names(p[WHEN], f"{package.origin}: meta.bpf_skel.progs[{i}]")
            except ValueError as e:
                raise PackageError(str(e)) from None
    return out
