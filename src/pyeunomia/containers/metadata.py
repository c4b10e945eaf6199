"""What the runtimes themselves say about a container, read once per new
container (containers/resolver.py caches it), never guessed from names:

- A process of the cgroup and its parent: containerd's shim
  (`containerd-shim-runc-v2 -namespace NS -id ID -address SOCK`, its working
  directory is the OCI bundle) or conmon (Podman, CRI-O: `-c ID -n NAME
  -b BUNDLE`). The bundle's `config.json` holds the CRI annotations (pod,
  namespace, container name, image) that containerd's CRI plugin and CRI-O
  write.
- Podman and CRI-O: containers/storage's `overlay-containers/containers.json`
  (beside the bundle) gives the names and the image name (its `metadata`).
- Docker: `/var/lib/docker/containers/ID/config.v2.json` (name, image, labels).
- containerd: `ctr --address SOCK --namespace NS containers info ID` (its
  image and labels; nerdctl's name label), once per container, only when
  `ctr` is installed (no gRPC client needed).

Every read is bounded (files up to 16 MiB, `ctr` 5 s) and a failure leaves
the field empty.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any, NamedTuple

from .paths import PathInfo

MAX_FILE = 16 << 20
DOCKER_ROOT = "/var/lib/docker"
CTR_TIMEOUT_S = 5.0


class Container(NamedTuple):
    runtime: str  # containerd, cri-o, docker, podman
    id: str
    name: str  # the runtime's name (Kubernetes: the container's name in its pod)
    image: str = ""
    pod: str = ""  # Kubernetes pod name
    namespace: str = ""  # Kubernetes namespace
    k8s_container: str = ""  # Kubernetes container name
    cgroup: str = ""  # path below the cgroup v2 root


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
        if len(data) > MAX_FILE:
            return None
        return json.loads(data)
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read(65536).split(b"\0") if a]
    except OSError:
        return []


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _flag(argv: list[str], *names: str) -> str:
    """The value of the first of `names` in argv (`-n X` or `--name=X`)."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return ""


def cgroup_pids(cgroup_dir: str) -> list[int]:
    try:
        with open(os.path.join(cgroup_dir, "cgroup.procs")) as f:
            return [int(x) for x in f.read(65536).split()[:64]]
    except (OSError, ValueError):
        return []


def _mount_ns(pid: int | str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return ""


ANCESTORS = 4  # shim -> runc create -> runc init while a container starts: its events come that early


def _manager(cgroup_dir: str) -> tuple[str, list[str], int]:
    """("shim" | "conmon" | "", its argv, its pid) of the runtime's shim or
    conmon above the first processes of the cgroup: their parent once the
    container runs, a grandparent while `runc create` still starts it. It
    must share the host's mount namespace (PID 1's, else this process's): a
    process inside a container can name itself conmon, but cannot leave the
    container's namespace."""
    host_ns = _mount_ns(1) or _mount_ns("self")  # PID 1 may hide its namespaces (a sandbox's init): ours
    for pid in cgroup_pids(cgroup_dir)[:8]:
        ppid = pid
        for _ in range(ANCESTORS):
            ppid = _ppid(ppid)
            if ppid <= 1:
                break
            argv = _cmdline(ppid) if host_ns and _mount_ns(ppid) == host_ns else []
            prog = os.path.basename(argv[0]) if argv else ""
            if prog.startswith("containerd-shim"):
                return "shim", argv, ppid
            if prog == "conmon":
                return "conmon", argv, ppid
    return "", [], 0


def _annotations(bundle: str) -> dict[str, str]:
    spec = _read_json(os.path.join(bundle, "config.json")) if bundle else None
    ann = spec.get("annotations") if isinstance(spec, dict) else None
    return {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {}


def _k8s(ann: dict[str, str]) -> tuple[str, str, str, str]:
    """(pod, namespace, container, image) from CRI annotations (containerd's, then CRI-O's)."""
    return (ann.get("io.kubernetes.cri.sandbox-name") or ann.get("io.kubernetes.pod.name", ""),
            ann.get("io.kubernetes.cri.sandbox-namespace") or ann.get("io.kubernetes.pod.namespace", ""),
            ann.get("io.kubernetes.cri.container-name") or ann.get("io.kubernetes.container.name", ""),
            ann.get("io.kubernetes.cri.image-name") or ann.get("io.kubernetes.cri-o.ImageName", ""))


def ctr_info(address: str, namespace: str, cid: str) -> dict[str, Any]:
    """containerd's record of a container through `ctr` ({} without ctr or on failure)."""
    ctr = shutil.which("ctr")
    if not ctr:
        return {}
    cmd = [ctr, "--namespace", namespace, "containers", "info", cid]
    if address:
        cmd[1:1] = ["--address", address]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=CTR_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    try:
        info = json.loads(out.stdout) if out.returncode == 0 else {}
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _storage_entry(bundle: str, cid: str) -> dict[str, Any]:
    """containers/storage's entry for a Podman or CRI-O container: the bundle
    is STORAGE/overlay-containers/ID/userdata, the list STORAGE/overlay-containers/containers.json."""
    listing = os.path.join(os.path.dirname(os.path.dirname(bundle.rstrip("/"))), "containers.json")
    entries = _read_json(listing)
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and e.get("id") == cid:
            return e
    return {}


def _from_shim(argv: list[str], shim_pid: int, info: PathInfo, cgroup: str) -> Container | None:
    ns = _flag(argv, "-namespace")
    if not info.certain and (_flag(argv, "-id") != info.id or ns != info.ctd_namespace):
        return None  # a /NS/ID path whose process is not that containerd container
    cid = info.id  # one shim may serve a whole pod (CRI's sandbox shim): the cgroup names the container
    try:
        bundle = os.readlink(f"/proc/{shim_pid}/cwd")
    except OSError:
        bundle = ""
    if bundle and os.path.basename(bundle) != cid:
        bundle = os.path.join(os.path.dirname(bundle), cid)
    pod, k8s_ns, k8s_name, image = _k8s(_annotations(bundle))
    name = k8s_name or cid
    runtime = "containerd"
    if ns == "moby":  # Docker's containers run under containerd's "moby" namespace
        runtime = "docker"
        cfg = _read_json(f"{DOCKER_ROOT}/containers/{cid}/config.v2.json")
        if isinstance(cfg, dict):
            name = str(cfg.get("Name", "")).lstrip("/") or name
            image = image or str((cfg.get("Config") or {}).get("Image", ""))
    elif not image or not k8s_name:
        details = ctr_info(_flag(argv, "-address"), ns, cid)
        image = image or str(details.get("Image") or "")
        labels = details.get("Labels") or {}
        if isinstance(labels, dict) and labels.get("nerdctl/name"):
            name = str(labels["nerdctl/name"])
    return Container(runtime, cid, name, image, pod, k8s_ns, k8s_name, cgroup)


def _from_conmon(argv: list[str], info: PathInfo, cgroup: str) -> Container:
    cid = _flag(argv, "-c", "--cid") or info.id
    bundle = _flag(argv, "-b", "--bundle")
    ann = _annotations(bundle)
    pod, k8s_ns, k8s_name, image = _k8s(ann)
    runtime = "podman" if ann.get("io.container.manager") == "libpod" or info.runtime == "podman" else "cri-o"
    entry = _storage_entry(bundle, cid) if bundle else {}
    meta: Any = {}
    try:
        meta = json.loads(entry.get("metadata") or "{}")
    except (TypeError, ValueError):
        pass
    meta = meta if isinstance(meta, dict) else {}
    names = entry.get("names") or []
    name = _flag(argv, "-n", "--name") or (str(names[0]) if names else "") or cid
    if runtime == "cri-o":
        name = k8s_name or name
    return Container(runtime, cid, name, image or str(meta.get("image-name", "")), pod, k8s_ns, k8s_name, cgroup)


def _from_docker_files(info: PathInfo, cgroup: str) -> Container | None:
    cfg = _read_json(f"{DOCKER_ROOT}/containers/{info.id}/config.v2.json")
    if not isinstance(cfg, dict):
        return None
    config = cfg.get("Config") or {}
    labels = config.get("Labels") or {}
    return Container("docker", info.id, str(cfg.get("Name", "")).lstrip("/") or info.id,
                     str(config.get("Image", "")), str(labels.get("io.kubernetes.pod.name", "")),
                     str(labels.get("io.kubernetes.pod.namespace", "")),
                     str(labels.get("io.kubernetes.container.name", "")), cgroup)


def describe(cgroup_dir: str, rel: str, info: PathInfo) -> Container | None:
    """The container in cgroup directory `cgroup_dir` (`rel` below the root)
    whose path parsed as `info`, from its runtime's metadata; None when no
    runtime claims it (yet: a cgroup with no process in it is asked again)."""
    kind, argv, mgr = _manager(cgroup_dir)
    if kind == "shim":
        return _from_shim(argv, mgr, info, rel)
    if kind == "conmon":
        return _from_conmon(argv, info, rel)
    if info.runtime == "docker":
        return _from_docker_files(info, rel)
    return None
