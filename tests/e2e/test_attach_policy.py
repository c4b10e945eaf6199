"""One attach policy for every command: `ecli run opensnoop`, `opensnoop` and
the exporter load the same programs from the same package, here and on a
kernel without opensnoop's newer helpers (before 5.17: the compat programs),
which a sitecustomize makes the helper probe answer as such a kernel would
(the kernel matrix runs all three on 5.10 for real)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from ..exporter.live import Exporter
from .helpers import ROOT, running, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

SYSCALLS = ["open", "openat", "openat2", "creat"] if os.uname().machine == "x86_64" else ["openat", "openat2"]
# bpf_loop (181), bpf_task_pt_regs (175) and bpf_get_current_task_btf (158) answered as missing
OLD_KERNEL_SITE = ("from pyeunomia.kernel import features\n"
                   "features.has_helper = lambda prog_type, helper: helper not in (158, 175, 181)\n")


def programs(bpftool: str) -> dict[int, str]:
    """Every loaded program: id -> name (bpftool gives the whole name from BTF)."""
    out = subprocess.run([bpftool, "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: p.get("name", "") for p in json.loads(out)}


def loaded_by_each(bpftool: str) -> dict[str, set[str]]:
    seen = {}
    for name, start in (("opensnoop", lambda: running("opensnoop")),
                        ("ecli", lambda: running("ecli", "run", "opensnoop")),
                        ("exporter", lambda: Exporter(temp_dir(), (ROOT / "examples" / "opensnoop.yaml").read_text()))):
        before = programs(bpftool)
        with start():
            # opensnoop's programs only: other tests may load programs at the same time
            seen[name] = {n for i, n in programs(bpftool).items() if i not in before and n.startswith("trace_e")}
    time.sleep(0.1)
    return seen


def test_ecli_opensnoop_and_the_exporter_load_the_same_programs(tool):
    seen = loaded_by_each(tool("bpftool"))
    assert seen["opensnoop"] == {f"trace_exit_{s}" for s in SYSCALLS}, seen
    assert seen["opensnoop"] == seen["ecli"] == seen["exporter"], seen


def test_without_the_newer_helpers_all_three_load_the_compat_programs(tool, monkeypatch):
    site = temp_dir()
    (site / "sitecustomize.py").write_text(OLD_KERNEL_SITE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    seen = loaded_by_each(tool("bpftool"))
    assert seen["opensnoop"] == {f"trace_{end}_{s}__compat" for end in ("enter", "exit") for s in SYSCALLS}, seen
    assert seen["opensnoop"] == seen["ecli"] == seen["exporter"], seen
