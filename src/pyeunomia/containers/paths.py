"""Which container a cgroup path belongs to, read from the path's layout
alone (pure, tested on strings). The layouts the runtimes write:

| runtime | cgroup driver | path |
|---|---|---|
| Docker | systemd | `/system.slice/docker-ID.scope` |
| Docker | cgroupfs | `/docker/ID` |
| Podman | systemd | `/machine.slice/libpod-ID.scope` (v2 may add `/container`) |
| Podman | cgroupfs | `/libpod_parent/libpod-ID` |
| containerd (CRI) | systemd | `/kubepods.slice/kubepods-QOS.slice/kubepods-QOS-podUID.slice/cri-containerd-ID.scope` |
| CRI-O | systemd | `.../kubepods-QOS-podUID.slice/crio-ID.scope` |
| any CRI | cgroupfs | `/kubepods/QOS/podUID/ID` (guaranteed pods: `/kubepods/podUID/ID`) |
| containerd (ctr, nerdctl) | cgroupfs | `/NAMESPACE/ID` (the default `cgroups_path` of containerd's namespaces) |

A path is only a candidate: the resolver (containers/resolver.py) asks the
runtime's own metadata (the shim's or conmon's bundle, containers.json,
config.v2.json, `ctr`) before it names a container, and a bare
`/NAMESPACE/ID` is a container only when a containerd shim says so.
Runtime-internal cgroups (`libpod-conmon-ID`, `crio-conmon-ID`) are not
containers.

`/proc/PID/cgroup` text is read for both hierarchies: the cgroup v2 line
(`0::/path`, v2-only and hybrid hosts) first, else a v1 controller's line
(v1-only hosts, where the BPF cgroup id has no meaning but a path still names
the container).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ID = r"[0-9a-f]{64}"
# the last component (or the last two, for Podman's nested `container`)
_SCOPES = (
    (re.compile(rf"^docker-({_ID})\.scope$"), "docker"),
    (re.compile(rf"^libpod-({_ID})(?:\.scope)?$"), "podman"),
    (re.compile(rf"^cri-containerd-({_ID})\.scope$"), "containerd"),
    (re.compile(rf"^crio-({_ID})\.scope$"), "cri-o"),
)
_POD = re.compile(r"^(?:kubepods(?:-(?:besteffort|burstable|guaranteed))?-)?pod([0-9a-f_-]{36})(?:\.slice)?$")
_QOS = re.compile(r"^kubepods(?:[.-].*)?$")
_BARE_ID = re.compile(rf"^{_ID}$")
# containerd's rules for namespace and container ids (identifiers.Validate)
_CTD_IDENT = re.compile(r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$")
# cgroups that are plainly the host's own, never a containerd namespace
_NOT_NAMESPACES = {"system.slice", "user.slice", "init.scope", "machine.slice", "kubepods", "kubepods.slice",
                   "libpod_parent", "docker", "lxc", "lxc.payload", "lxc.monitor"}


class PathInfo(NamedTuple):
    """What a cgroup path says: `runtime` ("docker", "podman", "containerd",
    "cri-o", or "cri" for a kubepods cgroupfs path that does not say which),
    the container `id`, the Kubernetes pod's UID (kubepods layouts) and, for
    containerd's `/NAMESPACE/ID`, the containerd namespace. `certain`: the
    layout names the runtime; false for the bare `/NAMESPACE/ID` guess."""

    runtime: str
    id: str
    pod_uid: str = ""
    ctd_namespace: str = ""
    certain: bool = True


def _pod_uid(parts: list[str]) -> str:
    for part in parts:
        m = _POD.match(part)
        if m:
            return m.group(1).replace("_", "-")
    return ""


def parse_cgroup_path(path: str) -> PathInfo | None:
    """The container a cgroup path (below the hierarchy's root, as
    /proc/PID/cgroup gives it) names, or None."""
    parts = [p for p in path.strip().split("/") if p]
    if not parts:
        return None
    if parts[-1] == "container" and len(parts) > 1:  # podman on v2: the payload's own child cgroup
        parts = parts[:-1]
    last = parts[-1]
    in_kubepods = any(_QOS.match(p) for p in parts[:-1])
    for pattern, runtime in _SCOPES:
        m = pattern.match(last)
        if m:
            return PathInfo(runtime, m.group(1), _pod_uid(parts[:-1]) if in_kubepods else "")
    if _BARE_ID.match(last):
        if in_kubepods:
            return PathInfo("cri", last, _pod_uid(parts[:-1]))
        if len(parts) == 2 and parts[0] == "docker":
            return PathInfo("docker", last)
    if len(parts) == 2 and parts[0] not in _NOT_NAMESPACES and not in_kubepods \
            and _CTD_IDENT.match(parts[0]) and _CTD_IDENT.match(last) and not last.endswith((".scope", ".slice")):
        return PathInfo("containerd", last, ctd_namespace=parts[0], certain=False)
    return None


def proc_cgroup_path(text: str) -> tuple[str, bool] | None:
    """(path, is_v2) from /proc/PID/cgroup's text: the v2 line (`0::PATH`)
    when present and not the root, else the first v1 line whose layout names
    a runtime (the `name=systemd` or any controller's), else the v2 root."""
    v2 = None
    v1 = []
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        if fields[0] == "0" and fields[1] == "":
            v2 = fields[2]
        else:
            v1.append(fields[2])
    if v2 is not None and v2 != "/":
        return v2, True
    for path in v1:
        info = parse_cgroup_path(path)
        if info is not None and info.certain:  # a bare /NS/ID needs its shim's word: not from v1 lines
            return path, False
    return (v2, True) if v2 is not None else None
