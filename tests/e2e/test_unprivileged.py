"""As an ordinary user every command names the capability it lacks, rather
than blaming the kernel: tracefs, which an ordinary user cannot look into,
is not "missing"."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from ..conftest import ROOT, require
from .helpers import command, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NO_CAP_BPF = "loading eBPF programs needs CAP_BPF: run as root, or grant CAP_BPF"


def as_nobody(argv: list[str]) -> subprocess.CompletedProcess[str]:
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is missing")
    cwd = temp_dir()
    cwd.chmod(0o755)  # the config and the working directory must be readable by that user
    config = cwd / "config.yaml"
    config.write_text((ROOT / "examples" / "opensnoop.yaml").read_text())
    config.chmod(0o644)
    argv = [str(config) if a == "CONFIG" else a for a in argv]
    return subprocess.run(NOBODY + argv, capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize(("argv", "prog"), [
    ([*command("opensnoop"), "-d", "1"], "opensnoop"),
    ([*command("ecli"), "run", "-d", "1", "opensnoop"], "ecli"),
    ([*command("eunomia-exporter"), "--check", "-c", "CONFIG"], "eunomia-exporter"),
    ([*command("eunomia-exporter"), "-c", "CONFIG", "--listen", "127.0.0.1:0"], "eunomia-exporter"),
], ids=["opensnoop", "ecli", "exporter-check", "exporter-serve"])
def test_ordinary_user_is_told_the_missing_capability(argv, prog):
    done = as_nobody(argv)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"{prog}: error: {NO_CAP_BPF}"]
    assert done.stdout == ""


def test_mounting_tracefs_without_privilege_names_cap_sys_admin():
    code = ("from pyeunomia.errors import MissingPrivilegeError\n"
            "from pyeunomia.kernel.tracefs import ensure_tracefs\n"
            "try:\n"
            "    ensure_tracefs()\n"
            "except MissingPrivilegeError as e:\n"
            "    print(e.capability, e)\n")
    done = as_nobody([sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("CAP_SYS_ADMIN mounting tracefs needs CAP_SYS_ADMIN: run as root, or grant "
                                   "CAP_SYS_ADMIN")
