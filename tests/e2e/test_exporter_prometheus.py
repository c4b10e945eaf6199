"""A real Prometheus server (Debian's, installed by `make test`) scrapes the
exporter every second; PromQL through its HTTP API must see the exact count
of a file's opens. The shipped prometheus.yml and Grafana dashboard are
checked with the same server."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import require
from ..exporter.live import Exporter, Opener, free_port
from .helpers import ROOT, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

EXAMPLES = ROOT / "examples"


def combined_config() -> str:
    """The tutorial's config and the in-kernel one, as two programs of one exporter."""
    programs = []
    for name in ("opensnoop.yaml", "opensnoop-kernel.yaml"):
        programs += yaml.safe_load((EXAMPLES / name).read_text())["programs"]
    return yaml.safe_dump({"programs": programs})


class Prometheus:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            doc = json.load(resp)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def wait_for(self, expr: str, predicate: Any, timeout: float = 40) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{expr}: still {result} after {timeout}s")


@contextmanager
def prometheus(tmp: Path, target: str, job_settings: dict[str, Any] | None = None) -> Iterator[Prometheus]:
    """Debian's Prometheus scraping `target` every second with the shipped
    prometheus.yml, plus `job_settings` for the job (scheme, tls_config, ...)."""
    binary = shutil.which("prometheus")
    require(binary is not None, "prometheus is not installed (make test installs Debian's)")
    assert binary is not None
    cfg = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    cfg["global"]["scrape_interval"] = cfg["global"]["evaluation_interval"] = "1s"
    job = cfg["scrape_configs"][0]
    job["scrape_interval"] = "1s"
    job["static_configs"] = [{"targets": [target]}]
    job.update(job_settings or {})
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
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


def test_prometheus_sees_the_exact_count():
    tmp = temp_dir()
    target = tmp / "scraped-9-times.txt"
    target.write_text("x")
    child = Opener(tmp, "p")
    with Exporter(tmp, combined_config()) as exp, prometheus(tmp, f"127.0.0.1:{exp.port}") as prom:
        prom.wait_for('up{job="eunomia"}', lambda r: r and r[0]["value"][1] == "1")
        child.do("open", target, 9)
        child.do("open", tmp / "absent", 2)
        expr = f'eunomia_file_open_counter_total{{filename="{target}"}}'
        [series] = prom.wait_for(expr, lambda r: r and r[0]["value"][1] == "9")
        assert series["metric"]["comm"] == child.name and series["metric"]["pid"] == str(child.pid)
        assert series["metric"]["job"] == "eunomia"
        time.sleep(2.5)  # two more scrapes: still exactly 9
        assert [s["value"][1] for s in prom.query(expr)] == ["9"]
        failed = prom.wait_for(f'eunomia_opens_total{{comm="{child.name}",result="ENOENT"}}', lambda r: bool(r))
        assert float(failed[0]["value"][1]) >= 2
        for name in ("eunomia_exporter_events_received_total", "eunomia_exporter_bpf_run_time_seconds_total",
                     "eunomia_exporter_series", "process_resident_memory_bytes"):
            assert prom.query(f'{name}{{job="eunomia"}}'), name
        # every query of the shipped dashboard is valid PromQL with data behind it
        dashboard = json.loads((EXAMPLES / "grafana-opensnoop.json").read_text())
        exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
        assert len(exprs) >= 8
        time.sleep(2)  # rate() needs two samples in its window
        empty = [e for e in exprs if not prom.query(e)]
        assert empty == [], empty
    child.close()


def test_shipped_prometheus_config_is_valid():
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool is not installed (it comes with Debian's prometheus)")
    assert promtool is not None
    result = subprocess.run([promtool, "check", "config", str(EXAMPLES / "prometheus.yml")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    cfg = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    assert cfg["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:8526"]
