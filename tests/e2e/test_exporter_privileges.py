"""--drop-caps (the default): once its programs are attached, every thread of
the exporter runs without capabilities (with the API on: only CAP_BPF,
CAP_PERFMON and CAP_SYS_ADMIN, which loading programs needs), and everything a
scrape reads still works: events, maps, run statistics, losses."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from pyeunomia.libbpf import CAPABILITIES

from ..exporter.live import Exporter, Opener
from .helpers import ROOT, temp_dir
from .test_exporter_api import program_doc

pytestmark = pytest.mark.usefixtures("kernel")

API_CAPS = (1 << CAPABILITIES["CAP_BPF"]) | (1 << CAPABILITIES["CAP_PERFMON"]) | (1 << CAPABILITIES["CAP_SYS_ADMIN"])


def capabilities(pid: int) -> dict[str, set[int]]:
    """CapEff, CapPrm, CapInh and CapBnd of each thread: {set name: {values}}."""
    out: dict[str, set[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):  # a request's thread that just ended
            continue
        for line in status.splitlines():
            name, _, value = line.partition(":\t")
            if name in ("CapEff", "CapPrm", "CapInh", "CapBnd"):
                out.setdefault(name, set()).add(int(value, 16))
    return out


def both_configs(pid: int) -> str:
    """Events (the tutorial's labels) and the in-kernel opens map, read at scrape time."""
    kernel = (ROOT / "examples" / "opensnoop-kernel.yaml").read_text().split("programs:\n", 1)[1]
    return f"""programs:
  - name: opensnoop
    options: {{pid: {pid}}}
    metrics:
      counters:
        - name: dropped_opens
          labels: [{{name: comm}}, {{name: filename, from: fname}}]
{kernel}"""


def test_no_capabilities_and_scrapes_still_work():
    tmp = temp_dir()
    child = Opener(tmp, "c")
    target = tmp / "without-caps.txt"
    target.write_text("x")
    with Exporter(tmp, both_configs(child.pid)) as exp:
        assert "capabilities: all dropped" in "".join(exp.running.stderr_lines)
        caps = capabilities(exp.pid)
        assert len(list(Path(f"/proc/{exp.pid}/task").iterdir())) >= 3  # main, http, one event thread
        assert caps == {"CapEff": {0}, "CapPrm": {0}, "CapInh": {0}, "CapBnd": {0}}, caps
        child.do("open", target, 5)
        child.do("open", tmp / "absent", 2)
        exp.wait_for(lambda: exp.value("dropped_opens_total", comm=child.name, filename=str(target)) == 5,
                     what="5 opens counted from events")
        exp.wait_for(lambda: (exp.value("eunomia_opens_total", comm=child.name, result="ENOENT") or 0) >= 2,
                     what="the opens map read at scrape time")
        assert sum(exp.samples("eunomia_exporter_bpf_run_count_total").values()) > 0  # run statistics
        assert exp.value("eunomia_exporter_events_lost_total", id="0", program="opensnoop") == 0
        assert exp.stop() == 0
    child.close()


def test_the_api_keeps_what_loading_needs():
    tmp = temp_dir()
    token = secrets.token_hex(24)
    (tmp / "token").write_text(token)
    (tmp / "token").chmod(0o600)
    child = Opener(tmp, "k")
    target = tmp / "loaded-after-the-drop.txt"
    target.write_text("x")
    with Exporter(tmp, "programs: []\n", "--enable-api", "--api-token-file", str(tmp / "token")) as exp:
        caps = capabilities(exp.pid)
        assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == {API_CAPS}, caps
        status, doc = exp.post("/start", program_doc(child.pid), token)  # loads and attaches after the drop
        assert (status, doc) == (200, {"id": 0})
        child.do("open", target, 2)
        exp.wait_for(lambda: exp.value("api_opens_total", comm=child.name, filename=str(target)) == 2,
                     what="2 opens through a program the API loaded")
        assert capabilities(exp.pid)["CapEff"] == {API_CAPS}  # the new event thread has no more
    child.close()


def test_no_drop_caps_keeps_them():
    tmp = temp_dir()
    mine = capabilities(os.getpid())
    with Exporter(tmp, "programs: []\n", "--no-drop-caps") as exp:
        assert "capabilities: all kept (--no-drop-caps)" in "".join(exp.running.stderr_lines)
        assert capabilities(exp.pid)["CapEff"] == mine["CapEff"] != {0}
        assert exp.get("/metrics")[0] == 200
