"""deploy/: the Kubernetes manifests against the Kubernetes schemas
(kubernetes-validate, strict: an unknown field is an error) of the oldest and
newest versions it knows, the pieces agreeing with each other, the exporter
config in the ConfigMap planned against the built-in package, and the
Prometheus config through promtool. The DaemonSet's capabilities are tried on
the real exporter in tests/e2e/test_fleet.py, and the scrape config's
relabelling with a real Prometheus there too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pyeunomia.exporter.config import parse_config
from pyeunomia.exporter.plan import plan_program

from .conftest import require

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
CAPABILITIES = ["BPF", "PERFMON", "SYS_RESOURCE", "SETUID", "SETGID"]
HOST_PATHS = {"/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup", "/proc", "/run/containerd", "/run/crio",
              "/run/containers", "/var/lib/containers"}


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate as module
    except ImportError:
        module = None
    require(module is not None, "kubernetes-validate is not installed (a test dependency: make deps-test)")
    return module


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def one(kind: str) -> dict[str, Any]:
    [doc] = [d for d in manifests() if d["kind"] == kind]
    return doc


def test_there_is_a_daemonset_configmap_service_and_rbac():
    kinds = sorted(d["kind"] for d in manifests())
    assert kinds == ["ConfigMap", "DaemonSet", "Namespace", "Role", "RoleBinding", "Service"]


@pytest.mark.parametrize("version", ["1.25.0", "latest"])
def test_every_manifest_passes_the_kubernetes_schema(version: str):
    kv = kubernetes_validate()
    if version == "latest":
        version = kv.latest_version()
    for doc in manifests():
        kv.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_the_schema_check_can_fail():
    kv = kubernetes_validate()
    ds = one("DaemonSet")
    ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilites"] = {}  # misspelt
    with pytest.raises(kv.ValidationError):
        kv.validate(ds, kv.latest_version(), strict=True)


def test_the_daemonset_asks_only_for_what_it_needs():
    pod = one("DaemonSet")["spec"]["template"]["spec"]
    assert pod["hostPID"] is True and "hostNetwork" not in pod and pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": CAPABILITIES}
    assert sc["seccompProfile"] == {"type": "Unconfined"}  # the default profiles refuse bpf() without SYS_ADMIN
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert set(host.values()) == HOST_PATHS
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all(mounts[name]["readOnly"] is True for name in host)  # every host path read-only
    assert all(m.get("readOnly") is True for m in mounts.values())


def test_the_pieces_agree():
    ds, svc, cm = one("DaemonSet"), one("Service"), one("ConfigMap")
    pod = ds["spec"]["template"]
    assert {d["metadata"]["namespace"] for d in manifests() if d["kind"] != "Namespace"} == {"eunomia"}
    assert one("Namespace")["metadata"]["name"] == "eunomia"
    assert ds["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [container] = pod["spec"]["containers"]
    [port] = container["ports"]
    [svc_port] = svc["spec"]["ports"]
    assert svc_port["targetPort"] == port["name"] == svc_port["name"] == "metrics"
    assert container["command"] == ["eunomia-exporter"]
    assert f"--listen=:{port['containerPort']}" in container["args"]
    # the config the exporter reads is the ConfigMap's key, where the volume puts it
    [config_arg] = [a for a in container["args"] if a.startswith("--config=")]
    config_path = Path(config_arg.split("=", 1)[1])
    [volume] = [v for v in pod["spec"]["volumes"] if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert str(config_path.parent) == mount["mountPath"] and config_path.name in cm["data"]
    # Prometheus keeps this Service's port, by name
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = prom["scrape_configs"]
    [sd] = job["kubernetes_sd_configs"]
    assert sd["role"] == "endpoints" and sd["namespaces"]["names"] == [svc["metadata"]["namespace"]]
    keep = job["relabel_configs"][0]
    assert keep["action"] == "keep" and keep["regex"] == f"{svc['metadata']['name']};{svc_port['name']}"
    targets = {r["target_label"]: r["source_labels"] for r in job["relabel_configs"] if "target_label" in r}
    assert targets == {"node": ["__meta_kubernetes_pod_node_name"], "exporter_pod": ["__meta_kubernetes_pod_name"],
                       "instance": ["__meta_kubernetes_pod_node_name"]}
    # Prometheus' RBAC covers what role: endpoints watches, in that namespace
    role = one("Role")
    assert role["metadata"]["namespace"] == "eunomia"
    core = [r for r in role["rules"] if r["apiGroups"] == [""]]
    assert set(core[0]["resources"]) == {"endpoints", "services", "pods"} and set(core[0]["verbs"]) == {
        "get", "list", "watch"}


def test_the_configmaps_exporter_config_plans():
    cm = one("ConfigMap")
    cfg = parse_config(cm["data"]["config.yaml"], "deploy/configmap.yaml")
    plans = [plan_program(p) for p in cfg.programs]  # the package's globals, maps and fields exist
    [metric] = plans[0].metrics
    assert (metric.name, metric.config.map, metric.config.max_series) == ("eunomia_opens", "opens", 5000)


def test_promtool_checks_the_scrape_config(tmp_path: Path):
    """Debian's Prometheus is built without Kubernetes discovery: there the
    only complaint may be that field, and the config passes with file
    discovery in its place. A promtool that has it must pass the file as is."""
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool is not installed (it comes with Debian's prometheus)")
    assert promtool is not None
    result = subprocess.run([promtool, "check", "config", str(DEPLOY / "prometheus.yml")], capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        assert "field kubernetes_sd_configs not found" in result.stdout + result.stderr, result.stdout + result.stderr
        cfg = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
        for job in cfg["scrape_configs"]:
            job.pop("kubernetes_sd_configs")
            job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
