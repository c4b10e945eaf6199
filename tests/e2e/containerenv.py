"""Real containers for the tests: Debian's containerd (driven with `ctr`) and
podman, running an image built here from a Debian package (busybox-static),
since no image registry is reachable.

The image is the package's files as a rootfs, imported with `podman import`
and handed to containerd as the OCI archive `podman save` writes. The .deb
and the archive are cached in /var/cache/pyeunomia/containers
(PYEUNOMIA_CONTAINER_CACHE moves it), keyed by the package's version: after
the first run, nothing is downloaded and an image already imported is kept.

Each container runs a loop that does one round of work each time the test
drops a file `/go` into its root (through /proc/PID/root): open its marker
file `/marker-NAME` and connect to 127.0.0.1:PORT on the host's network. So
every action is the test's, counted exactly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("PYEUNOMIA_CONTAINER_CACHE", "/var/cache/pyeunomia/containers"))
CTD_NAMESPACE = "pyeunomia-test"
CTD_SOCKET = "/run/containerd/containerd.sock"
# podman's defaults raise RLIMIT_NOFILE and RLIMIT_NPROC above this sandbox's hard limits, and crun refuses
# hybrid cgroup hosts: runc with the limits given
PODMAN_RUN = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
              "--network", "host"]
LOOP = ("echo {name} > /marker-{name}; "
        "while :; do if [ -e /go ]; then /bin/busybox rm /go; /bin/busybox cat /marker-{name} >/dev/null; "
        "/bin/busybox nc -w 2 127.0.0.1 {port} </dev/null; echo done > /done; fi; /bin/busybox sleep 0.05; done")


def sh(*argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {out.returncode}: {out.stderr.strip()[-500:]}")
    return out


def _deb() -> Path:
    """busybox-static's .deb, from apt, cached by version."""
    version = sh("apt-cache", "policy", "busybox-static").stdout.split("Candidate:")[1].split()[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"busybox-static_{version.replace(':', '%3a')}_*.deb"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        subprocess.run(["apt-get", "download", f"busybox-static={version}"], cwd=tmp, capture_output=True,
                       check=True, timeout=300)
        deb = next(Path(tmp).glob("*.deb"))
        return Path(shutil.move(str(deb), CACHE / deb.name))


def image() -> tuple[str, Path]:
    """(image name, its OCI archive), imported into podman; built once per package version."""
    deb = _deb()
    tag = deb.name.split("_")[1].replace("%3a", "-").replace(":", "-").replace("+", "-").replace("~", "-")
    name = f"localhost/pyeunomia-busybox:{tag}"
    archive = CACHE / f"pyeunomia-busybox-{tag}.oci.tar"
    if sh("podman", "image", "exists", name, check=False).returncode != 0:
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            root = Path(tmp) / "root"
            sh("dpkg-deb", "-x", str(deb), str(root))
            for d in ("etc", "tmp", "proc", "sys", "dev"):
                (root / d).mkdir(exist_ok=True)
            (root / "bin" / "sh").symlink_to("busybox")
            rootfs = Path(tmp) / "rootfs.tar"
            with tarfile.open(rootfs, "w") as tar:
                tar.add(root, arcname=".")
            sh("podman", "import", "-q", str(rootfs), name)
        archive.unlink(missing_ok=True)
    if not archive.exists():
        partial = archive.with_suffix(".part")
        partial.unlink(missing_ok=True)
        sh("podman", "save", "-q", "--format", "oci-archive", "-o", str(partial), name)
        partial.rename(archive)
    return name, archive


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


class Containerd:
    """containerd answering on its usual socket: the one running, or one started here (and stopped)."""

    def __init__(self, workdir: Path):
        self.proc: subprocess.Popen[bytes] | None = None
        if _answers(CTD_SOCKET):
            return
        self.log = open(workdir / "containerd.log", "wb")
        self.proc = subprocess.Popen(["containerd"], stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 30
        while not _answers(CTD_SOCKET):  # `ctr version` would wait 10 s for a socket nobody serves
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"containerd did not start: see {workdir / 'containerd.log'}")
            time.sleep(0.1)
        sh("ctr", "version", timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()


class Box:
    """One running container of either runtime."""

    def __init__(self, runtime: str, name: str, image_name: str, port: int):
        self.runtime, self.name = runtime, name
        script = LOOP.format(name=name, port=port)
        if runtime == "containerd":
            sh("ctr", "-n", CTD_NAMESPACE, "run", "-d", "--net-host", image_name, name, "/bin/busybox", "sh", "-c",
               script)
            self.pid = int(next(line.split()[1] for line in sh("ctr", "-n", CTD_NAMESPACE, "task", "ls").stdout
                                .splitlines() if line.split()[:1] == [name]))
        else:
            sh("podman", "run", "-d", *PODMAN_RUN, "--name", name, image_name, "/bin/busybox", "sh", "-c", script)
            self.pid = int(sh("podman", "inspect", "-f", "{{.State.Pid}}", name).stdout)
        self.cgroup_id = cgroup_id_of(self.pid)
        self.marker = f"/marker-{name}"
        deadline = time.monotonic() + 10
        while not Path(f"/proc/{self.pid}/root{self.marker}").exists():
            assert time.monotonic() < deadline, f"{name}: its loop never started"
            time.sleep(0.05)

    def go(self) -> None:
        """One round: open the marker, connect to the port; returns when it is done."""
        root = Path(f"/proc/{self.pid}/root")
        (root / "done").unlink(missing_ok=True)
        (root / "go").write_text("1")
        deadline = time.monotonic() + 10
        while not (root / "done").exists():
            assert time.monotonic() < deadline, f"{self.name}: the round did not finish"
            time.sleep(0.02)

    def remove(self) -> None:
        if self.runtime == "containerd":
            sh("ctr", "-n", CTD_NAMESPACE, "task", "kill", "-s", "SIGKILL", self.name, check=False)
            for _ in range(50):
                if sh("ctr", "-n", CTD_NAMESPACE, "task", "rm", self.name, check=False).returncode == 0:
                    break
                time.sleep(0.1)
            sh("ctr", "-n", CTD_NAMESPACE, "containers", "rm", self.name, check=False)
        else:
            sh("podman", "rm", "-f", "-t", "0", self.name, check=False)


def cgroup_id_of(pid: int) -> int:
    """The cgroup v2 id of a process: the inode of its v2 cgroup directory."""
    from pyeunomia.decoders.cgroup import cgroup2_root

    root = cgroup2_root()
    assert root is not None
    with open(f"/proc/{pid}/cgroup") as f:
        path = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
    return os.stat(root + path).st_ino


def import_into_containerd(archive: Path, name: str) -> None:
    if name not in sh("ctr", "-n", CTD_NAMESPACE, "images", "ls", "-q").stdout.split():
        sh("ctr", "-n", CTD_NAMESPACE, "images", "import", str(archive))
