"""The runtimes' metadata as the resolver reads it, from files laid out as
each runtime writes them (containers/metadata.py), and name matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyeunomia.containers import metadata
from pyeunomia.containers.metadata import Container
from pyeunomia.containers.paths import PathInfo
from pyeunomia.containers.resolver import ContainerResolver

ID = "e8d4cb668816491f883d3c06200caafc591d8d7afabe2b741a5ed6d11800df85"


def _bundle(tmp: Path, annotations: dict[str, str]) -> Path:
    bundle = tmp / "overlay-containers" / ID / "userdata"
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({"ociVersion": "1.0.2", "annotations": annotations}))
    return bundle


def test_crio_container_from_its_annotations_and_storage(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, {"io.kubernetes.pod.name": "web-7d9c", "io.kubernetes.pod.namespace": "shop",
                                "io.kubernetes.container.name": "nginx",
                                "io.kubernetes.cri-o.ImageName": "registry.local/nginx:1.25"})
    (tmp_path / "overlay-containers" / "containers.json").write_text(json.dumps(
        [{"id": ID, "names": ["k8s_nginx_web-7d9c_shop_0"], "metadata": "{}"}]))
    argv = ["/usr/bin/conmon", "-c", ID, "-n", "k8s_nginx_web-7d9c_shop_0", "-b", str(bundle)]
    got = metadata._from_conmon(argv, PathInfo("cri-o", ID, "uid"), "/kubepods.slice/crio-x.scope")
    assert got == Container("cri-o", ID, "nginx", "registry.local/nginx:1.25", "web-7d9c", "shop", "nginx",
                            "/kubepods.slice/crio-x.scope")


def test_podman_container_from_conmon_and_containers_json(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, {"io.container.manager": "libpod"})
    (tmp_path / "overlay-containers" / "containers.json").write_text(json.dumps(
        [{"id": "other"}, {"id": ID, "names": ["db"], "metadata": json.dumps({"image-name": "localhost/pg:16"})}]))
    argv = ["/usr/bin/conmon", "--api-version", "1", "-c", ID, "-u", ID, "-b", str(bundle), "-n", "db"]
    got = metadata._from_conmon(argv, PathInfo("podman", ID), "/libpod_parent/libpod-x")
    assert got == Container("podman", ID, "db", "localhost/pg:16", "", "", "", "/libpod_parent/libpod-x")


def test_docker_container_from_config_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "containers" / ID).mkdir(parents=True)
    (tmp_path / "containers" / ID / "config.v2.json").write_text(json.dumps(
        {"Name": "/api", "Config": {"Image": "api:3", "Labels": {"io.kubernetes.pod.name": "api-0",
                                                                  "io.kubernetes.pod.namespace": "prod",
                                                                  "io.kubernetes.container.name": "api"}}}))
    monkeypatch.setattr(metadata, "DOCKER_ROOT", str(tmp_path))
    got = metadata._from_docker_files(PathInfo("docker", ID), f"/docker/{ID}")
    assert got == Container("docker", ID, "api", "api:3", "api-0", "prod", "api", f"/docker/{ID}")
    assert metadata._from_docker_files(PathInfo("docker", "0" * 64), "/x") is None


def test_cri_annotations_of_containerd() -> None:
    ann = {"io.kubernetes.cri.sandbox-name": "web-0", "io.kubernetes.cri.sandbox-namespace": "default",
           "io.kubernetes.cri.container-name": "app", "io.kubernetes.cri.image-name": "docker.io/app:1"}
    assert metadata._k8s(ann) == ("web-0", "default", "app", "docker.io/app:1")
    assert metadata._k8s({}) == ("", "", "", "")


def test_flags_of_a_command_line() -> None:
    argv = ["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address=/run/c.sock"]
    assert (metadata._flag(argv, "-namespace"), metadata._flag(argv, "-id"), metadata._flag(argv, "-address")) == \
        ("k8s.io", "abc", "/run/c.sock")
    assert metadata._flag(argv, "-bundle") == ""


def test_matching_by_name_id_prefix_pod_and_namespace(tmp_path: Path) -> None:
    r = ContainerResolver(root=str(tmp_path))
    r._known = {10: Container("containerd", ID, "app", pod="web-0", namespace="shop", k8s_container="app"),
                11: Container("podman", "f" * 64, "db"), 12: None}
    assert r.matching(names=["app"]) == {10}
    assert r.matching(names=[ID[:12]]) == {10}
    assert r.matching(names=[ID[:11]]) == set()  # a prefix shorter than 12 is no id
    assert r.matching(names=["db", "app"]) == {10, 11}
    assert r.matching(pods=["web-0"]) == {10}
    assert r.matching(namespaces=["shop"], names=["db"]) == set()  # every kind given must match
    assert r.matching(namespaces=["shop"]) == {10}


def test_lookup_is_provisional_until_a_scan_settles_it(tmp_path: Path) -> None:
    (tmp_path / "system.slice").mkdir()
    (tmp_path / "default" / "starting").mkdir(parents=True)  # containerd's layout, no process in it yet
    host, starting = (tmp_path / "system.slice").stat().st_ino, (tmp_path / "default" / "starting").stat().st_ino
    r = ContainerResolver(root=str(tmp_path), min_rescan_s=3600)
    assert r.lookup(host) == (None, True)  # the first miss scans: a cgroup that is no container
    assert r.lookup(starting) == (None, False)  # no runtime claimed it yet: asked again later
    assert r.lookup(999_999_999) == (None, False)  # not looked for since: no scan allowed for an hour
    r.min_rescan_s = 0
    assert r.lookup(999_999_999) == (None, True)  # a scan did not find it: a removed cgroup
    assert r.scans == 2
