"""The cgroup path layouts of every runtime, on strings (containers/paths.py)."""

from __future__ import annotations

import pytest

from pyeunomia.containers.paths import PathInfo, parse_cgroup_path, proc_cgroup_path

ID = "e8d4cb668816491f883d3c06200caafc591d8d7afabe2b741a5ed6d11800df85"
UID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
UID_ = UID.replace("-", "_")


@pytest.mark.parametrize(("path", "expected"), [
    # Docker: systemd and cgroupfs drivers
    (f"/system.slice/docker-{ID}.scope", PathInfo("docker", ID)),
    (f"/docker/{ID}", PathInfo("docker", ID)),
    # Podman: systemd (v2 adds a `container` child), cgroupfs
    (f"/machine.slice/libpod-{ID}.scope", PathInfo("podman", ID)),
    (f"/machine.slice/libpod-{ID}.scope/container", PathInfo("podman", ID)),
    (f"/libpod_parent/libpod-{ID}", PathInfo("podman", ID)),
    # Kubernetes with the systemd driver: containerd's CRI and CRI-O, each QoS class
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope",
     PathInfo("containerd", ID, UID)),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{ID}.scope",
     PathInfo("cri-o", ID, UID)),
    (f"/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope", PathInfo("containerd", ID, UID)),
    # Kubernetes with the cgroupfs driver: the runtime is not in the path
    (f"/kubepods/burstable/pod{UID}/{ID}", PathInfo("cri", ID, UID)),
    (f"/kubepods/pod{UID}/{ID}", PathInfo("cri", ID, UID)),
    # kind/k3s nest the kubepods tree below a node's own cgroup
    (f"/system.slice/k3s.service/kubepods/besteffort/pod{UID}/{ID}", PathInfo("cri", ID, UID)),
    # containerd's namespaces (ctr, nerdctl): /NAMESPACE/ID, a guess the shim must confirm
    ("/default/probe1", PathInfo("containerd", "probe1", ctd_namespace="default", certain=False)),
    ("/k8s.io/web-1", PathInfo("containerd", "web-1", ctd_namespace="k8s.io", certain=False)),
])
def test_container_layouts(path: str, expected: PathInfo) -> None:
    assert parse_cgroup_path(path) == expected


@pytest.mark.parametrize("path", [
    "/", "", "/system.slice", "/system.slice/ssh.service", "/user.slice/user-0.slice/session-1.scope",
    "/init.scope", f"/libpod_parent/libpod-conmon-{ID}", f"/machine.slice/libpod-conmon-{ID}.scope",
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{ID}.scope",
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice",  # the pod, not a container
    f"/kubepods/burstable/pod{UID}", "/process_api/635057a7dc0d30aedd59bc2270195d88/x/y",
    "/docker", f"/docker-{ID[:12]}.scope", "/system.slice/docker.service", "/machine.slice/x.scope",
    "/default/probe1/child",  # deeper than containerd's own layout
    "/default/bad..id",
])
def test_not_containers(path: str) -> None:
    assert parse_cgroup_path(path) is None


V2 = f"0::/system.slice/docker-{ID}.scope\n"
HYBRID = f"""12:pids:/docker/{ID}
4:memory:/docker/{ID}
1:name=systemd:/docker/{ID}
0::/docker/{ID}
"""
V1 = f"""12:pids:/libpod_parent/libpod-{ID}
4:memory:/libpod_parent/libpod-{ID}
1:name=systemd:/libpod_parent/libpod-{ID}
"""
HYBRID_HOST = "9:name=systemd:/\n4:memory:/process_api/x\n0::/\n"


def test_proc_cgroup_v2_only() -> None:
    assert proc_cgroup_path(V2) == (f"/system.slice/docker-{ID}.scope", True)


def test_proc_cgroup_hybrid_takes_the_v2_line() -> None:
    path, v2 = proc_cgroup_path(HYBRID) or ("", False)
    assert (path, v2) == (f"/docker/{ID}", True)
    assert parse_cgroup_path(path) == PathInfo("docker", ID)


def test_proc_cgroup_v1_only_takes_a_controller_line() -> None:
    path, v2 = proc_cgroup_path(V1) or ("", True)
    assert (path, v2) == (f"/libpod_parent/libpod-{ID}", False)
    assert parse_cgroup_path(path) == PathInfo("podman", ID)


def test_proc_cgroup_host_process() -> None:
    assert proc_cgroup_path(HYBRID_HOST) == ("/", True)
    assert proc_cgroup_path("garbage") is None
