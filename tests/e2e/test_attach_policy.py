"""One attach policy for every command: `ecli run opensnoop`, `opensnoop` and
the exporter load the same programs from the same package."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from ..exporter.live import Exporter
from .helpers import ROOT, running, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")


def programs(bpftool: str) -> dict[int, str]:
    """Every loaded program: id -> name."""
    out = subprocess.run([bpftool, "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: p.get("name", "") for p in json.loads(out)}


def test_ecli_opensnoop_and_the_exporter_load_the_same_programs(tool):
    bpftool = tool("bpftool")
    seen = {}
    for name, start in (("opensnoop", lambda: running("opensnoop")),
                        ("ecli", lambda: running("ecli", "run", "opensnoop")),
                        ("exporter", lambda: Exporter(temp_dir(), (ROOT / "examples" / "opensnoop.yaml").read_text()))):
        before = programs(bpftool)
        with start():
            # opensnoop's programs only: other tests may load programs at the same time
            seen[name] = {n for i, n in programs(bpftool).items() if i not in before and n.startswith("trace_e")}
    time.sleep(0.1)
    assert seen["opensnoop"] and seen["opensnoop"] == seen["ecli"] == seen["exporter"], seen
