"""The process and file tools name containers and filter by them in the
kernel (issue 16): each runs as `ecli run -j --containers --container X
TOOL` while the same action is made on the host, in a container not chosen,
then in the chosen one; every event printed, up to the tool's exit, must be
the chosen container's, named by its runtime, and the action's own event
must be there with its exact values.

- Real containers (tests/e2e/containerenv.py's busybox image) where busybox
  can make the action: one of containerd (chosen, by its name) and one of
  podman (not chosen), each running `busybox sleep`, the actions made with
  `ctr task exec` / `podman exec`; the host runs a copy of the same static
  busybox. exitsnoop, killsnoop, sigsnoop, statsnoop, syncsnoop, mountsnoop,
  filelife.
- A cgroup laid out as a Kubernetes pod's container under dockershim
  (`kubepods.slice/.../kubepods-besteffort-podUID.slice/docker-ID.scope`
  under the cgroup v2 mount) with Docker's `containers/ID/config.v2.json`
  and the kubelet's labels, chosen in turn by an id prefix, the pod, the
  namespace, the Kubernetes container name, pod and namespace, where the
  action needs what busybox lacks (threads, bash, glibc's resolver, a memory
  limit): the test's own Python or bash children are moved in before they
  act, and the same child outside does the same. threadsnoop, bashreadline,
  gethostlatency, oomkill, drsnoop.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.files import cgroup2_root

from ...conftest import require
from ..containerenv import CTD_NAMESPACE, PODMAN_RUN, Box, Containerd, cgroup_id_of, image, import_into_containerd, sh
from ..helpers import Running, command, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

Event = dict[str, Any]
RUN_ID = f"{os.getpid() % 100000}"
DOCKER_ROOT = Path("/var/lib/docker")
MEMCG_V1 = Path("/sys/fs/cgroup/memory")
ENOENT = 2
SIGWINCH = 28


# -- helpers -------------------------------------------------------------------

def filter_ids(pid: int) -> set[int]:
    """The cgroup ids in the cgroup_filter map process `pid` holds (found
    through its fds: other tools may run beside this test)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            m = re.search(r"^map_id:\s+(\d+)", Path(f"/proc/{pid}/fdinfo/{fd}").read_text(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    for map_id in sorted(ids):
        if json.loads(sh("bpftool", "-j", "map", "show", "id", str(map_id)).stdout).get("name") != "cgroup_filter":
            continue
        out = sh("bpftool", "-j", "map", "dump", "id", str(map_id)).stdout
        return {int(e["formatted"]["key"]) if "formatted" in e else
                int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
                for e in (json.loads(out) if out.strip() else [])}
    return set()


def start_filtered(tool: str, choose: list[str], cgroup_id: int) -> Running:
    """The tool with the `choose` options, once its kernel-side filter holds
    the chosen container's cgroup (before that it drops everything)."""
    run = Running([*command("ecli"), "run", "-j", "--containers", *choose, tool], "attached")
    deadline = time.monotonic() + 10
    while cgroup_id not in filter_ids(run.proc.pid):
        if time.monotonic() > deadline:
            run.stop()
            raise AssertionError(f"{tool}: cgroup {cgroup_id} never entered the filter; {run.stderr_lines}")
        time.sleep(0.1)
    return run


def events_until(run: Running, want: Callable[[Event], bool], timeout: float = 15) -> tuple[Event, list[Event]]:
    """The first event `want` accepts, and every event the tool printed until its exit (Ctrl-C, sent after it)."""
    found: list[Event] = []

    def match(line: str) -> bool:
        e = json.loads(line)
        if want(e):
            found.append(e)
        return bool(found)
    lines = run.wait_for(match, timeout)
    assert run.stop() == 0, run.stderr_lines
    every = [json.loads(line) for line in lines + run.rest()]
    return found[0], [e for e in every if "map" not in e]  # maps printed at exit (lost) are not events


def assert_only(every: list[Event], cgroup_id: int, name: str, runtime: str, pod: str = "", ns: str = "") -> None:
    others = [e for e in every if e["cgroup_id"] != cgroup_id]
    assert others == [], others[:5]
    assert {(e["container"], e["container_runtime"], e["pod"], e["k8s_namespace"]) for e in every} == \
        {(name, runtime, pod, ns)}


# -- real containers: busybox's actions ----------------------------------------

class Sleeper(Box):
    """A container of either runtime whose only process sleeps: the test's `exec`s are all it does."""

    def __init__(self, runtime: str, name: str, image_name: str):
        self.runtime, self.name = runtime, name
        argv = ["/bin/busybox", "sleep", "100000"]
        try:
            if runtime == "containerd":
                sh("ctr", "-n", CTD_NAMESPACE, "run", "-d", "--net-host", image_name, name, *argv)
                self.pid = int(next(line.split()[1] for line in sh("ctr", "-n", CTD_NAMESPACE, "task", "ls").stdout
                                    .splitlines() if line.split()[:1] == [name]))
            else:
                sh("podman", "run", "-d", *PODMAN_RUN, "--name", name, image_name, *argv)
                self.pid = int(sh("podman", "inspect", "-f", "{{.State.Pid}}", name).stdout)
            self.cgroup_id = cgroup_id_of(self.pid)
        except BaseException:
            self.remove()  # started, or half started: never left behind
            raise
        self.execs = 0

    def run(self, argv: list[str]) -> str:
        """Its output."""
        self.execs += 1
        if self.runtime == "containerd":
            return sh("ctr", "-n", CTD_NAMESPACE, "task", "exec", "--exec-id", f"c16-{self.execs}", self.name, *argv,
                      check=False).stdout
        return sh("podman", "exec", self.name, *argv, check=False).stdout


@dataclass
class Places:
    chosen: Sleeper   # containerd's: the tool's --container
    other: Sleeper    # podman's: not chosen
    busybox: Path     # the image's static busybox, copied for the host's actions
    host_dir: Path    # where the host's actions make their files


@pytest.fixture(scope="module")
def places() -> Iterator[Places]:
    for name in ("ctr", "containerd", "podman", "runc", "bpftool"):
        require(shutil.which(name) is not None, f"{name} is not installed (make test installs it)")
    require(os.geteuid() == 0, "containers need root")
    work = temp_dir()
    ctd = Containerd(work)
    boxes: list[Sleeper] = []
    try:
        image_name, archive = image()
        import_into_containerd(archive, image_name)
        boxes.append(Sleeper("containerd", f"c16-chosen-{RUN_ID}", image_name))
        boxes.append(Sleeper("podman", f"c16-other-{RUN_ID}", image_name))
        busybox = work / "busybox"
        shutil.copy(f"/proc/{boxes[0].pid}/root/bin/busybox", busybox)
        busybox.chmod(0o755)
        yield Places(boxes[0], boxes[1], busybox, work)
    finally:
        for box in boxes:
            box.remove()
        ctd.stop()


@dataclass
class Action:
    steps: Callable[[str, str], list[list[str]]]  # (busybox path, directory) -> applet argvs
    want: Callable[[Event, str], bool]            # (event, directory) -> the action's event?
    check: Callable[[Event, str], None]           # its exact values (in the chosen container), given its output


TAG = f"c16-{RUN_ID}"


def _check_exit(e: Event, out: str) -> None:
    assert (e["exit_code"], e["exit_status"], e["sig"], e["comm"]) == (77, 77 << 8, 0, "busybox")


def _check_kill(e: Event, out: str) -> None:
    """kill(2)'s pid argument is the shell's in its PID namespace (what it printed)."""
    assert (e["tpid"], e["ret"], e["comm"]) == (int(out), 0, "busybox")


def _check_signal(e: Event, out: str) -> None:
    """signal_generate names the target by its pid in the initial namespace: the sender's own."""
    assert (e["tpid"], e["ret"], e["comm"], e["tcomm"]) == (e["pid"], 0, "busybox", "busybox")
    assert int(out) != e["pid"]  # the container's PID namespace numbers it otherwise


def _check_stat(e: Event, out: str) -> None:
    assert (e["ret"], e["comm"]) == (-ENOENT, "busybox")


def _check_sync(e: Event, out: str) -> None:
    assert e["fd"] >= 0


def _check_mount(e: Event, out: str) -> None:
    assert (e["op"], e["source"], e["fstype"], e["ret"], e["comm"]) == (0, "none", "tmpfs", -ENOENT, "busybox")


def _check_life(e: Event, out: str) -> None:
    """The path as the container's mount namespace names it; touch made it, rm (another process) deleted it."""
    assert (e["path"], e["comm"]) == (f"/{TAG}-life", "busybox")
    assert e["creator_pid"] != e["pid"] and e["age"] > 0


ACTIONS = {
    "exitsnoop": Action(lambda bb, d: [["sh", "-c", "exit 77"]],
                        lambda e, d: e["exit_code"] == 77 and e["comm"] == "busybox", _check_exit),
    "killsnoop": Action(lambda bb, d: [["sh", "-c", "echo $$; kill -WINCH $$"]],
                        lambda e, d: e["sig"] == SIGWINCH and e["comm"] == "busybox", _check_kill),
    "sigsnoop": Action(lambda bb, d: [["sh", "-c", "echo $$; kill -WINCH $$"]],
                       lambda e, d: e["sig"] == SIGWINCH and e["comm"] == "busybox", _check_signal),
    "statsnoop": Action(lambda bb, d: [["stat", f"{d}/{TAG}-stat"]],
                        lambda e, d: e["path"] == f"{d}/{TAG}-stat", _check_stat),
    "syncsnoop": Action(lambda bb, d: [["sync", "-d", bb]],
                        lambda e, d: e["call"] == 2 and e["comm"] == "busybox", _check_sync),  # fdatasync
    "mountsnoop": Action(lambda bb, d: [["mount", "-t", "tmpfs", "none", f"{d}/{TAG}-missing"]],
                         lambda e, d: e["target"] == f"{d}/{TAG}-missing", _check_mount),
    "filelife": Action(lambda bb, d: [["touch", f"{d}/{TAG}-life"], ["rm", f"{d}/{TAG}-life"]],
                       lambda e, d: e["path"].endswith(f"/{TAG}-life"), _check_life),
}


@pytest.mark.parametrize("tool", sorted(ACTIONS))
def test_real_container_only(places: Places, tool: str) -> None:
    action = ACTIONS[tool]
    chosen = places.chosen
    run = start_filtered(tool, ["--container", chosen.name], chosen.cgroup_id)
    try:
        for argv in action.steps(str(places.busybox), str(places.host_dir)):  # the host first
            subprocess.run([str(places.busybox), *argv], capture_output=True, timeout=30, check=False)
        for argv in action.steps("/bin/busybox", ""):
            places.other.run(["/bin/busybox", *argv])
        out = "".join(chosen.run(["/bin/busybox", *argv]) for argv in action.steps("/bin/busybox", ""))
        e, every = events_until(run, lambda e: action.want(e, ""))
    finally:
        if run.proc.poll() is None:
            run.stop()
    assert e["cgroup_id"] == chosen.cgroup_id
    action.check(e, out)
    assert_only(every, chosen.cgroup_id, chosen.name, "containerd")


# -- a Docker-laid-out cgroup: the test's own children -----------------------------

@dataclass
class Fake:
    id: str
    name: str
    pod: str
    namespace: str
    k8s_container: str
    group: Path
    cgroup_id: int


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    """A Kubernetes pod's container as dockershim laid it out (systemd driver):
    `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podUID.slice/docker-ID.scope`,
    and Docker's config.v2.json for it with the kubelet's labels; all removed after."""
    root = cgroup2_root()
    require(root is not None, "no cgroup v2 hierarchy is mounted")
    require(os.geteuid() == 0, "cgroups need root")
    require(shutil.which("bpftool") is not None, "bpftool is not installed (make test installs it)")
    assert root is not None
    digest = hashlib.sha256(f"pyeunomia-c16-{os.getpid()}-{time.time_ns()}".encode()).hexdigest()
    cid, uid = digest, f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    found = Fake(cid, f"c16-docker-{RUN_ID}", f"c16-pod-{RUN_ID}", f"c16-ns-{RUN_ID}", f"c16-app-{RUN_ID}",
                 Path(root) / "kubepods.slice" / "kubepods-besteffort.slice" /
                 f"kubepods-besteffort-pod{uid.replace('-', '_')}.slice" / f"docker-{cid}.scope", 0)
    made: list[Path] = []  # what to remove, deepest last
    meta = DOCKER_ROOT / "containers" / cid
    labels = {"io.kubernetes.pod.name": found.pod, "io.kubernetes.pod.namespace": found.namespace,
              "io.kubernetes.container.name": found.k8s_container}
    try:
        for d in [*reversed(found.group.parents[:4]), found.group, DOCKER_ROOT, meta.parent, meta]:
            if not d.exists():
                d.mkdir()
                made.append(d)
        (meta / "config.v2.json").write_text(json.dumps({"Name": f"/{found.name}",
                                                         "Config": {"Image": "c16:fake", "Labels": labels}}))
        found.cgroup_id = found.group.stat().st_ino
        yield found
    finally:
        shutil.rmtree(meta, ignore_errors=True)
        for d in reversed(made):
            deadline = time.monotonic() + 5
            while d.exists():
                try:
                    d.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


PY_THREAD = "import sys, threading\nsys.stdin.readline()\nt = threading.Thread(target=print)\nt.start()\nt.join()\n"
PY_RESOLVE = "import socket, sys\nsys.stdin.readline()\nsocket.getaddrinfo('localhost', None, socket.AF_INET)\n"
PY_OOM = "import sys\nsys.stdin.readline()\nb = b'x' * (256 << 20)\n"
BASH_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/", "TERM": "dumb", "INPUTRC": "/dev/null"}


def _memcg(limit: int) -> Path:
    if not MEMCG_V1.is_dir():
        pytest.skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
    path = MEMCG_V1 / f"pyeu-c16-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    path.mkdir()
    (path / "memory.limit_in_bytes").write_text(str(limit))
    return path


def _cold_file() -> Path:
    cold = temp_dir() / "cold"
    with cold.open("wb") as f:
        f.write(os.urandom(1 << 20) * 48)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # not cached: the readers' reads charge it
    return cold


def _go(kid: subprocess.Popen[str], text: str = "go\n") -> None:
    assert kid.stdin is not None
    kid.stdin.write(text)
    kid.stdin.flush()


@pytest.mark.parametrize("tool", ["threadsnoop", "gethostlatency", "bashreadline", "oomkill", "drsnoop"])
def test_docker_layout_only(fake: Fake, tool: str) -> None:
    # each way of choosing it, once: an id prefix, the pod, the namespace, the Kubernetes container name, two kinds
    choose = {"threadsnoop": ["--container", fake.id[:12]], "gethostlatency": ["--pod", fake.pod],
              "bashreadline": ["--namespace", fake.namespace], "oomkill": ["--container", fake.k8s_container],
              "drsnoop": ["--pod", fake.pod, "--namespace", fake.namespace]}[tool]
    memcg = _memcg(32 << 20 if tool == "oomkill" else 16 << 20) if tool in ("oomkill", "drsnoop") else None
    v1 = [memcg] if memcg else []
    if tool == "bashreadline":
        argv = [os.path.realpath("/bin/bash"), "--norc", "--noprofile", "-i"]
    elif tool == "drsnoop":
        cold = _cold_file()
        argv = [sys.executable, "-c", f"import os, sys\nsys.stdin.readline()\nfd = os.open({str(cold)!r}, 0)\n"
                "while os.read(fd, 1 << 20):\n    pass\n"]
    else:
        argv = [sys.executable, "-c", {"threadsnoop": PY_THREAD, "gethostlatency": PY_RESOLVE, "oomkill": PY_OOM}[tool]]
    kw: dict[str, Any] = {"env": BASH_ENV} if tool == "bashreadline" else {}
    outside = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, preexec_fn=lambda: [(g / "cgroup.procs").write_text("0") for g in v1],
                               **kw)
    inside = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, preexec_fn=lambda: [(g / "cgroup.procs").write_text("0")
                                                             for g in [*v1, fake.group]], **kw)
    run: Running | None = None
    try:
        time.sleep(0.3)  # both have exec'd and mapped libc (gethostlatency's uprobes attach to what is mapped)
        run = start_filtered(tool, choose, fake.cgroup_id)
        if tool == "bashreadline":
            # each shell sat in readline() before the probe: a first line gets past that call
            _go(outside, "true\n: c16-outside\nexit\n")
            assert outside.wait(30) == 0
            _go(inside, "true\n: c16-inside\nexit\n")
            want: Callable[[Event], bool] = lambda e: e["line"] == ": c16-inside"  # noqa: E731
        else:
            _go(outside)
            outside.wait(60)
            _go(inside)
            if tool == "oomkill":
                want = lambda e: e["kpid"] == inside.pid  # noqa: E731
            else:
                want = lambda e: e["pid"] == inside.pid  # noqa: E731
        e, every = events_until(run, want)
        inside_status = inside.wait(60)
    finally:
        if run is not None and run.proc.poll() is None:
            run.stop()
        for kid in (outside, inside):
            if kid.poll() is None:
                kid.kill()
            kid.wait()
        if memcg is not None:
            for _ in range(50):
                try:
                    memcg.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)  # the killed child's memory is still being uncharged
    assert e["cgroup_id"] == fake.cgroup_id
    if tool == "oomkill":
        assert (inside_status, outside.returncode, e["tpid"]) == (-9, -9, inside.pid)  # both were OOM-killed
    elif tool == "threadsnoop":
        assert (e["pid"], e["creator_tid"]) == (inside.pid, inside.pid) and e["tid"] != inside.pid
    elif tool == "gethostlatency":
        assert (e["pid"], e["host"], e["call"], e["ret"]) == (inside.pid, "localhost", 0, 0)
    elif tool == "bashreadline":
        assert (e["pid"], inside_status) == (inside.pid, 0)
    else:
        assert (e["pid"], e["memcg"]) == (inside.pid, 1) and e["nr_reclaimed"] >= 0
    assert_only(every, fake.cgroup_id, fake.name, "docker", fake.pod, fake.namespace)
