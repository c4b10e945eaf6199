"""scripts/toolchain.py (`make toolchain`): its parsing, and a real fetch from
Debian's bookworm-backports into a private prefix that leaves the system's
packages and apt configuration as they were."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, require

spec = importlib.util.spec_from_file_location("toolchain_script", ROOT / "scripts" / "toolchain.py")
assert spec is not None and spec.loader is not None
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)

POLICY = """\
libbpf-dev:
  Installed: (none)
  Candidate: 1:1.4.6-1~bpo12+1
  Version table:
     1:1.4.6-1~bpo12+1 100
        100 http://deb.debian.org/debian bookworm-backports/main amd64 Packages
bpftool:
  Installed: (none)
  Candidate: 7.5.0+6.12.95-1~bpo12+1
  Version table:
     7.5.0+6.12.95-1~bpo12+1 100
"""
VERSIONS = {"libbpf-dev": "1:1.4.6-1~bpo12+1", "bpftool": "7.5.0+6.12.95-1~bpo12+1"}


def test_versions():
    assert script.upstream("1:1.4.6-1~bpo12+1") == (1, 4, 6)
    assert script.upstream("7.5.0+6.12.95-1~bpo12+1") == (7, 5, 0)
    assert script.upstream("1:1.1.2-0+deb12u1") == (1, 1, 2)
    assert script.parse_policy(POLICY) == VERSIONS
    assert script.parse_policy("bpftool:\n  Installed: (none)\n  Candidate: (none)\n") == {}
    assert script.good_enough(VERSIONS) == []
    assert script.good_enough({"libbpf-dev": "1:1.1.2-0+deb12u1", "bpftool": "7.1.0+6.1.176-1"}) == [
        "libbpf-dev 1:1.1.2-0+deb12u1 is older than 1.4", "bpftool 7.1.0+6.1.176-1 is older than 7.5"]
    assert script.good_enough({"bpftool": "7.5.0"}) == ["libbpf-dev is not in bookworm-backports"]
    assert script.folder_name(VERSIONS) == "libbpf-1.4.6-1~bpo12+1_bpftool-7.5.0+6.12.95-1~bpo12+1"


def test_only_complete_and_current_prefixes_are_used(tmp_path):
    def prefix(name: str, packages: dict[str, str] | None) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        if packages is not None:
            (folder / script.MANIFEST).write_text(json.dumps({"packages": packages}))
        return folder

    prefix("half-done", None)  # killed before its manifest: not complete
    prefix("old", {"libbpf-dev": "1:1.1.2-0+deb12u1", "bpftool": "7.1.0"})
    current = prefix("current", VERSIONS)
    newer = prefix("newer", {"libbpf-dev": "1:1.5.0-1", "bpftool": "7.5.0"})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / script.MANIFEST).write_text("{")
    assert script.complete_prefixes(tmp_path) == [newer, current]


def test_link_is_replaced_in_place(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    at = tmp_path / "venv" / "share" / "toolchain"
    script.link(a, at)
    assert os.readlink(at) == str(a)
    script.link(b, at)
    assert os.readlink(at) == str(b)
    assert [p.name for p in at.parent.iterdir()] == ["toolchain"]


def system_state() -> str:
    """The system's packages and apt configuration that the script must leave alone."""
    h = hashlib.sha256()
    h.update(subprocess.run(["dpkg-query", "-W", "libbpf-dev", "libbpf1", "bpftool"], capture_output=True).stdout)
    for folder in (Path("/etc/apt"), Path("/var/lib/apt/lists")):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("lock"):
                h.update(f"{path} {path.stat().st_mtime_ns}\n".encode())
    return h.hexdigest()


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "toolchain.py"), *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.skipif(sys.platform != "linux", reason="Debian only")
def test_fetch_into_a_private_prefix(tmp_path):
    for tool in ("apt-get", "dpkg-deb", "readelf"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (make test installs it)")
    before = system_state()
    root, at = tmp_path / "root", tmp_path / "venv" / "share" / "pyeunomia" / "toolchain"
    done = run_script("--root", str(root), "--link", str(at))
    assert done.returncode == 0, done.stderr
    prefix = at.resolve()
    assert prefix.parent == root
    manifest = json.loads((prefix / script.MANIFEST).read_text())
    assert manifest["suite"] == "bookworm-backports"
    assert script.upstream(manifest["packages"]["libbpf-dev"]) >= (1, 4)
    assert done.stderr == (f"toolchain: libbpf headers {manifest['libbpf']} and bpftool {manifest['bpftool']} "
                           f"in {prefix} (linked from {at})\n")
    # apt checked the packages against the signed indexes; the manifest keeps what was unpacked
    assert set(manifest["sha256"]) == {f for f in manifest["sha256"] if f.endswith(".deb")}
    assert len(manifest["sha256"]) == 2
    # only what ecc uses: the headers and bpftool, which links no libbpf.so (its own is static)
    assert sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file() and "include" not in p.parts
                  ) == [script.MANIFEST, "usr/sbin/bpftool"]
    needed = subprocess.run(["readelf", "-d", str(prefix / "usr/sbin/bpftool")], capture_output=True, text=True)
    assert "libbpf" not in needed.stdout
    version = subprocess.run([str(prefix / "usr/sbin/bpftool"), "version"], capture_output=True, text=True)
    assert version.stdout.startswith(f"bpftool v{manifest['bpftool']}\n")
    assert "#define LIBBPF_MINOR_VERSION" in (prefix / "usr/include/bpf/libbpf_version.h").read_text()
    assert system_state() == before
    # a second run finds the prefix and asks no mirror: an unreachable one changes nothing
    unreachable = {"PYEUNOMIA_DEBIAN_MIRROR": "http://127.0.0.1:9/debian"}
    started = time.monotonic()
    again = run_script("--root", str(root), "--link", str(at), env=unreachable)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 1.0
    assert at.resolve() == prefix
    # --refresh asks it, fails, and keeps what there is
    refreshed = run_script("--root", str(root), "--refresh", env=unreachable)
    assert refreshed.returncode == 0
    assert refreshed.stderr.startswith("toolchain: cannot ask the mirror (")
    assert f"keeping {prefix.name}\n" in refreshed.stderr
    # with nothing to keep, that is one clear line and a failure
    failed = run_script("--root", str(tmp_path / "empty"), env=unreachable)
    assert failed.returncode == 1
    assert failed.stderr.startswith("toolchain: cannot read bookworm-backports's package lists from "
                                    "http://127.0.0.1:9/debian (apt-get exited with 100: ")
    assert failed.stderr.endswith("): check the network, or set PYEUNOMIA_DEBIAN_MIRROR to a Debian mirror\n")
    assert len(failed.stderr.splitlines()) == 1
