"""The exporter's container labels with real containers (containerd through
`ctr`, and podman; tests/e2e/containerenv.py), in both of its privilege modes:
by default it serves as nobody with no capability and asks a resolver
process that stays root with CAP_SYS_PTRACE alone
(src/pyeunomia/containers/resolverd.py); with --no-drop-caps it reads the
runtimes' metadata itself. The resolver's death empties the labels with one
log line and no more; the exporter's death ends the resolver."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyeunomia.kernel.caps import CAPABILITIES

from .containerenv import Box
from .helpers import Running, command, temp_dir
from .test_containers import Env, expected_runtime, running_env
from .test_exporter_privileges import capabilities, identity

pytestmark = pytest.mark.usefixtures("kernel")
PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pyeunomia" / "tools" / "opensnoop" / "package.json"
PTRACE = 1 << CAPABILITIES["CAP_SYS_PTRACE"]
WARNING = "warning: the container resolver"
CONFIG = f"""programs:
  - name: opensnoop
    metrics:
      counters:
        - name: container_opens
          description: opens per container and file
          labels:
            - name: container
              from: cgroup_id
              decoders: [container]
            - name: runtime
              from: cgroup_id
              decoders: [container_runtime]
            - name: file
              from: fname
    compiled_ebpf_filename: {PACKAGE}
"""


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from running_env()


class Served:
    """An exporter with CONFIG on a free port."""

    def __init__(self, *args: str):
        from ..exporter.live import free_port

        config = temp_dir() / "containers.yaml"
        config.write_text(CONFIG)
        self.port = free_port()
        self.run = Running([*command("eunomia-exporter"), *args, "-c", str(config), "--listen",
                            f"127.0.0.1:{self.port}"], None)
        deadline = time.monotonic() + 30
        while not any("listening" in line for line in self.run.stderr_lines):
            assert time.monotonic() < deadline and self.run.proc.poll() is None, self.run.stderr_lines
            time.sleep(0.1)
        found = re.search(r"container resolver: pid (\d+)", "".join(self.run.stderr_lines))
        self.resolver = int(found.group(1)) if found else None

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            assert r.status == 200
            return str(r.read().decode())

    def wait_for(self, want: list[str]) -> str:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            text = self.scrape()
            if all(w in text for w in want):
                break
            time.sleep(0.2)
        return text

    def warnings(self) -> list[str]:
        return [line for line in self.run.stderr_lines if WARNING in line]


def _series(box: Box, count: int, container: str, runtime: str) -> str:
    return f'container_opens_total{{container="{container}",file="{box.marker}",runtime="{runtime}"}} {count:.1f}'


@pytest.mark.parametrize("mode", ["as nobody", "--no-drop-caps"])
def test_exporter_labels_each_container(env: Env, mode: str) -> None:
    served = Served(*(["--no-drop-caps"] if mode == "--no-drop-caps" else []))
    boxes = env.boxes[:2]
    try:
        for _ in range(3):
            for b in boxes:
                b.go()
        want = {b.marker: _series(b, 3, b.name, expected_runtime(b)) for b in boxes}
        text = served.wait_for(list(want.values()))
        if mode == "as nobody":
            assert served.resolver is not None, served.run.stderr_lines
            _assert_separated(served.run.proc.pid, served.resolver)
        else:
            assert served.resolver is None
            assert "privileges: all kept (--no-drop-caps)" in "".join(served.run.stderr_lines)
    finally:
        assert served.run.stop() == 0
    if served.resolver is not None:
        assert not _alive(served.resolver)  # EOF on its socket: it ended, and the exporter reaped it
    for b in boxes:
        # each open of a marker counted for its own container, none for another or the host
        assert [line for line in text.splitlines() if f'file="{b.marker}"' in line] == [want[b.marker]], text
    assert served.warnings() == []


def _assert_separated(exporter: int, resolver: int) -> None:
    """The exporter: nobody in every thread, no capability; its resolver
    child: uid 0 with CAP_SYS_PTRACE alone (bounding set too), no-new-privs,
    and no descriptor but its socket and /dev/null on 0-2."""
    assert identity(exporter)["Uid"] == {"65534 65534 65534 65534"}
    assert capabilities(exporter) == {"CapEff": {0}, "CapPrm": {0}, "CapInh": {0}, "CapBnd": {0}}
    status = Path(f"/proc/{resolver}/status").read_text()
    assert f"PPid:\t{exporter}\n" in status
    # saved uid nobody: the exporter's death may signal it (PR_SET_PDEATHSIG); real, effective and file uid 0
    assert identity(resolver) == {"Uid": {"0 0 65534 0"}, "Gid": {"0 0 0 0"}, "Groups": {""}, "NoNewPrivs": {"1"}}
    assert capabilities(resolver) == {"CapEff": {PTRACE}, "CapPrm": {PTRACE}, "CapInh": {0}, "CapBnd": {PTRACE}}
    fds: dict[int, str] = {}
    for _ in range(50):  # a `ctr` it runs for a container of another test holds two pipes for a moment
        fds = {int(fd): os.readlink(f"/proc/{resolver}/fd/{fd}") for fd in os.listdir(f"/proc/{resolver}/fd")}
        if len(fds) == 4:
            break
        time.sleep(0.1)
    socket_fd = next(fd for fd in fds if fd > 2)
    assert {fd: t for fd, t in fds.items() if fd != socket_fd} == {0: "/dev/null", 1: "/dev/null", 2: "/dev/null"}
    assert fds[socket_fd].startswith("socket:["), fds
    cmdline = Path(f"/proc/{resolver}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1:4] == [b"-I", b"-m", b"pyeunomia.cli.resolverd"]


def test_killing_the_resolver_leaves_the_exporter_serving(env: Env) -> None:
    served = Served()
    box = env.boxes[0]
    try:
        box.go()
        served.wait_for([_series(box, 1, box.name, expected_runtime(box))])
        assert served.resolver is not None
        os.kill(served.resolver, signal.SIGKILL)
        late = [env.start("podman", "pod-after"), env.start("containerd", "ctd-after")]
        for b in late:
            b.go()
        # the containers started after its death: counted (the loop's first write of its marker, and the
        # round's read), with empty container labels
        text = served.wait_for([_series(b, 2, "", "") for b in late])
        box.go()  # a container named before its death keeps its labels
        text = served.wait_for([_series(box, 2, box.name, expected_runtime(box))])
        assert served.run.proc.poll() is None
    finally:
        code = served.run.stop()
    for b in late:
        assert [line for line in text.splitlines() if f'file="{b.marker}"' in line] == [_series(b, 2, "", "")]
    assert served.warnings() == [
        f"eunomia-exporter: {WARNING} (pid {served.resolver}) has gone (killed by signal 9): container labels are "
        "empty from now on\n"]
    assert code == 0 and not any("Traceback" in line for line in served.run.stderr_lines)


@pytest.mark.parametrize("stopped", [False, True])
def test_the_resolver_ends_with_the_exporter(env: Env, stopped: bool) -> None:
    """SIGKILL of the exporter ends it: through EOF on its socket, or, when
    it cannot read (stopped, or busy), through its parent-death signal."""
    served = Served()
    resolver = served.resolver
    assert resolver is not None
    try:
        if stopped:
            os.kill(resolver, signal.SIGSTOP)  # it will not see EOF: only PR_SET_PDEATHSIG's SIGKILL ends it
        os.kill(served.run.proc.pid, signal.SIGKILL)  # the exporter alone, not its process group
        served.run.proc.wait()
        deadline = time.monotonic() + 10
        while _alive(resolver):
            assert time.monotonic() < deadline, "the resolver outlived the exporter by 10 s"
            time.sleep(0.05)
    finally:
        if _alive(resolver):
            os.kill(resolver, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended: its new parent has yet to reap it


PROBE = """
import json, os, sys
from pyeunomia.kernel import process
from pyeunomia.containers import ContainerResolver
process.drop_privileges(set(sys.argv[2:]))
try:
    cwd = os.readlink(f"/proc/{sys.argv[1]}/cwd")
except OSError as e:
    cwd = e.strerror
resolver = ContainerResolver()
resolver.scan()
print(json.dumps({"cwd": cwd, "named": {str(i): c.name for i, c in resolver.containers().items()}}))
"""


@pytest.mark.parametrize("keep", [[], ["CAP_SYS_PTRACE"]])
def test_the_resolver_needs_only_cap_sys_ptrace(env: Env, keep: list[str]) -> None:
    """uid 0 with no capability reads the runtimes' files but not a shim's
    /proc/PID/cwd (its bundle) nor its mount namespace, since the shim holds
    capabilities the reader lacks: nothing is named. CAP_SYS_PTRACE alone
    names both containers."""
    shim = int(Path(f"/proc/{env.boxes[0].pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    out = subprocess.run([sys.executable, "-c", PROBE, str(shim), *keep], capture_output=True, text=True,
                         timeout=60, check=True)
    found = json.loads(out.stdout)
    named = {int(i): n for i, n in found["named"].items()}
    if keep:
        assert found["cwd"].endswith(f"/pyeunomia-test/{env.boxes[0].name}")
        assert {b.cgroup_id: named.get(b.cgroup_id) for b in env.boxes[:2]} == \
            {b.cgroup_id: b.name for b in env.boxes[:2]}
    else:
        assert found["cwd"] == "Permission denied"
        assert not {b.cgroup_id for b in env.boxes[:2]} & named.keys()


def test_a_resolver_without_cap_sys_ptrace_is_named_in_one_warning() -> None:
    """Started without CAP_SYS_PTRACE (a DaemonSet that does not add it), the
    exporter still serves as nobody and says what its resolver cannot do."""
    from ..exporter.live import free_port

    config = temp_dir() / "containers.yaml"
    config.write_text(CONFIG)
    port = free_port()
    run = Running(["setpriv", "--bounding-set", "-sys_ptrace", *command("eunomia-exporter"), "-c", str(config),
                   "--listen", f"127.0.0.1:{port}"], "listening")
    try:
        text = "".join(run.stderr_lines)
    finally:
        assert run.stop() == 0
    assert ("eunomia-exporter: warning: the container resolver has no CAP_SYS_PTRACE (the exporter was started "
            "without it): it cannot reach the runtimes' shims and conmon, so it names Docker containers at most\n"
            ) in text
    assert re.search(r"privileges: uid 65534, gid 65534, no capabilities; container resolver: pid \d+, uid 0, "
                     r"no capabilities;", text), text


def test_a_program_the_api_starts_labels_containers(env: Env) -> None:
    """With the API on the resolver starts too: a program loaded through the
    API after the drop (the exporter can no longer start one) has container
    labels."""
    import secrets

    from ..exporter.live import Exporter

    tmp = temp_dir()
    token = secrets.token_hex(24)
    (tmp / "token").write_text(token)
    (tmp / "token").chmod(0o600)
    with PACKAGE.open() as f:
        doc = {"name": "opensnoop", "ebpf_data": f.read(), "metrics": {"counters": [
            {"name": "api_container_opens", "description": "opens per container",
             "labels": [{"name": "container", "from": "cgroup_id", "decoders": ["container"]},
                        {"name": "file", "from": "fname"}]}]}}
    boxes = env.boxes[:2]
    with Exporter(tmp, "programs: []\n", "--enable-api", "--api-token-file", str(tmp / "token")) as exp:
        assert re.search(r"container resolver: pid \d+, uid 0, capabilities CAP_SYS_PTRACE;",
                         "".join(exp.running.stderr_lines))
        assert exp.post("/start", doc, token) == (200, {"id": 0})
        for b in boxes:
            b.go()
        exp.wait_for(lambda: all(exp.value("api_container_opens_total", container=b.name, file=b.marker) == 1
                                 for b in boxes), what="each container's open, labelled")
