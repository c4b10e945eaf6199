"""eunomia-exporter against the real kernel: the tutorial's config counts the
opens of a file exactly, with clean labels, on the default address too;
histograms and gauges from events; --check; clean stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from pyeunomia.source import builtin_packages

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids
from ..exporter.live import READY, Exporter, Opener, free_port
from .helpers import ROOT, Running, command, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

TUTORIAL = (ROOT / "examples" / "opensnoop.yaml").read_text()
COUNTER = "eunomia_file_open_counter_total"


def test_examples_config_is_the_tutorials():
    assert TUTORIAL == """programs:
  - name: opensnoop
    metrics:
      counters:
        - name: eunomia_file_open_counter
          description: test
          labels:
            - name: pid
            - name: comm
            - name: filename
              from: fname
    compiled_ebpf_filename:
"""


def test_tutorial_config_counts_opens_of_a_file_exactly():
    tmp = temp_dir()
    target = tmp / "opened-7-times.txt"
    target.write_text("x")
    before = loaded_prog_ids()
    child = Opener(tmp)
    with Exporter(tmp, TUTORIAL) as exp:
        labels = {"pid": str(child.pid), "comm": child.name, "filename": str(target)}
        assert exp.value(COUNTER, **labels) is None
        child.do("open", target, 7)
        exp.wait_for(lambda: exp.value(COUNTER, **labels) is not None, what="the counter")
        exp.wait_for(lambda: exp.value(COUNTER, **labels) == 7, what="7 opens")
        child.do("open", target, 3)
        exp.wait_for(lambda: exp.value(COUNTER, **labels) == 10, what="10 opens")
        mine = {k: v for k, v in exp.samples(COUNTER).items() if ("pid", str(child.pid)) in k}
        assert mine == {tuple(sorted(labels.items())): 10}  # no stray series for this process
        line = f'{COUNTER}{{comm="{child.name}",filename="{target}",pid="{child.pid}"}} 10.0\n'
        assert line in exp.scrape()  # clean values: no JSON quotes around bash or the path
        status, headers, body = exp.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
        assert status == 200 and headers["content-type"].startswith("application/openmetrics-text")
        om = {f.name: f for f in parse_openmetrics(body.decode())}
        om_value = [s.value for s in om["eunomia_file_open_counter"].samples
                    if s.labels.get("filename") == str(target) and s.name == COUNTER]
        assert om_value == [10]
        received = exp.value("eunomia_exporter_events_received_total", id="0", program="opensnoop")
        assert received is not None and received >= 10
        assert exp.value("eunomia_exporter_events_lost_total", id="0", program="opensnoop") == 0
        runs = exp.samples("eunomia_exporter_bpf_run_count_total")
        assert runs and sum(runs.values()) >= 10
        status, _, page = exp.get("/")
        assert status == 200 and b"opensnoop" in page and b'href="/metrics"' in page
        assert exp.stop() == 0
    child.close()
    assert_nothing_new_loaded(before)


def test_escaped_label_values_keep_two_names_apart():
    """A file named coll<ESC>X and one named with the four characters \\x1bX
    are two series: the escape of one is not the other's name."""
    tmp = temp_dir()
    raw, literal = tmp / "coll\x1bX", tmp / "coll\\x1bX"
    raw.write_text("x")
    literal.write_text("x")
    before = loaded_prog_ids()
    child = Opener(tmp)
    with Exporter(tmp, TUTORIAL) as exp:
        def opened() -> dict[str, float]:
            return {dict(k)["filename"]: v for k, v in exp.samples(COUNTER).items()
                    if ("pid", str(child.pid)) in k and "coll" in dict(k)["filename"]}
        child.do("open", raw, 1)
        child.do("open", literal, 2)
        exp.wait_for(lambda: sum(opened().values()) == 3, what="3 opens")
        assert opened() == {f"{tmp}/coll\\x1bX": 1, f"{tmp}/coll\\\\x1bX": 2}
        assert "\x1b" not in exp.scrape()
        assert exp.stop() == 0
    child.close()
    assert_nothing_new_loaded(before)


def test_tutorial_config_on_the_default_address():
    """No -c and no --listen: config.yaml in the working directory, 127.0.0.1:8526."""
    tmp = temp_dir()
    (tmp / "config.yaml").write_text(TUTORIAL)
    target = tmp / "default-port.txt"
    target.write_text("x")
    child = Opener(tmp)
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        running = Running(command("eunomia-exporter"), READY)
    finally:
        os.chdir(cwd)
    try:
        assert "http://127.0.0.1:8526/metrics" in "".join(running.stderr_lines)
        exp = Exporter.__new__(Exporter)
        exp.port, exp.running, exp.tls, exp.headers = 8526, running, None, {}
        child.do("open", target, 5)
        labels = {"pid": str(child.pid), "comm": child.name, "filename": str(target)}
        exp.wait_for(lambda: exp.value(COUNTER, **labels) == 5, what="5 opens on port 8526")
    finally:
        assert running.stop() == 0
        child.close()


def test_histogram_and_gauge_from_events_and_decoded_labels():
    tmp = temp_dir()
    child = Opener(tmp, "h")
    config = f"""programs:
  - name: opensnoop
    options: {{pid: {child.pid}}}
    metrics:
      histograms:
        - name: open_mode
          description: the mode argument
          value: mode
          buckets: {{type: explicit, bounds: [0, 100, 500]}}
          labels: [{{name: comm}}]
      gauges:
        - name: last_open_result
          value: ret
          labels:
            - name: result
              from: ret
              decoders: [result]
      counters:
        - name: opens_by_flags
          labels:
            - name: flags
              decoders: [open_flags]
"""
    with Exporter(tmp, config) as exp:
        made = tmp / "made"
        child.do("open", made, 2, 0o644)  # 420: O_CREAT with mode
        child.do("open", made, 3)  # mode 0
        child.do("open", tmp / "absent", 1)
        exp.wait_for(lambda: exp.value("open_mode_count", comm=child.name) == 6, what="6 observations")
        buckets = {dict(k)["le"]: v for k, v in exp.samples("open_mode_bucket").items()}
        assert buckets == {"0.0": 4, "100.0": 4, "500.0": 6, "+Inf": 6}
        assert exp.value("open_mode_sum", comm=child.name) == 2 * 0o644
        assert exp.value("last_open_result", result="ENOENT") == -2
        assert exp.value("last_open_result", result="ok") is not None
        flags = {dict(k)["flags"]: v for k, v in exp.samples("opens_by_flags_total").items()}
        assert flags == {"O_RDONLY|O_CREAT|O_CLOEXEC": 2, "O_RDONLY|O_CLOEXEC": 4}  # os.open adds O_CLOEXEC
    child.close()


def test_quiet_series_expire():
    tmp = temp_dir()
    child = Opener(tmp, "e")
    config = f"""programs:
  - name: opensnoop
    options: {{pid: {child.pid}}}
    metrics:
      counters:
        - name: expiring_opens
          expire_after: 1s
          labels: [{{name: filename, from: fname}}]
"""
    with Exporter(tmp, config) as exp:
        child.do("open", tmp / "once", 2)
        exp.wait_for(lambda: exp.value("expiring_opens_total", filename=str(tmp / "once")) == 2, what="2 opens")
        exp.wait_for(lambda: exp.value("expiring_opens_total", filename=str(tmp / "once")) is None, timeout=5,
                     what="the series to expire")
        assert exp.value("eunomia_exporter_series_expired_total", metric="expiring_opens") == 1
        assert exp.value("eunomia_exporter_series", metric="expiring_opens") == 0
        child.do("open", tmp / "once", 1)  # back, counting from zero
        exp.wait_for(lambda: exp.value("expiring_opens_total", filename=str(tmp / "once")) == 1, what="1 open")
    child.close()


def test_check_loads_attaches_and_unloads():
    tmp = temp_dir()
    (tmp / "config.yaml").write_text(TUTORIAL)
    before = loaded_prog_ids()
    result = subprocess.run([*command("eunomia-exporter"), "--check"], cwd=tmp, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "opensnoop: 4 BPF programs loaded and attached; 1 metric\nconfig.yaml: OK\n"
    assert_nothing_new_loaded(before)


def test_a_program_name_with_escapes_is_escaped_on_the_terminal():
    """The program's name comes from the config (or an API body): --check's
    report and the serving line show its ESC escaped."""
    tmp = temp_dir()
    config = TUTORIAL.replace("  - name: opensnoop\n", '  - name: "snoop\\e[2J"\n').replace(
        "    compiled_ebpf_filename:\n", f"    compiled_ebpf_filename: {builtin_packages()['opensnoop']}\n")
    (tmp / "config.yaml").write_text(config)
    before = loaded_prog_ids()
    result = subprocess.run([*command("eunomia-exporter"), "--check"], cwd=tmp, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("snoop\\x1b[2J: 4 BPF programs loaded and attached")
    with Exporter(tmp, config) as exp:
        assert exp.stop() == 0
    shown = "".join(exp.running.stderr_lines)
    assert "(programs: snoop\\x1b[2J)" in shown and "\x1b" not in shown + result.stdout + result.stderr
    assert_nothing_new_loaded(before)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_cleanly_leaving_nothing_loaded(sig):
    tmp = temp_dir()
    before = loaded_prog_ids()
    exp = Exporter(tmp, TUTORIAL)
    assert len(loaded_prog_ids() - before) == 4
    assert exp.stop(sig) == 0
    assert not any("Traceback" in line for line in exp.running.stderr_lines)
    assert_nothing_new_loaded(before)


def test_a_busy_port_is_one_line_and_loads_nothing():
    tmp = temp_dir()
    (tmp / "config.yaml").write_text(TUTORIAL)
    before = loaded_prog_ids()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*command("eunomia-exporter"), "--listen", f"127.0.0.1:{port}"], cwd=tmp,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == (f"eunomia-exporter: error: cannot listen on 127.0.0.1:{port}: Address already in use: "
                             "stop what uses it, or pass --listen HOST:PORT\n")
    assert_nothing_new_loaded(before)
    assert free_port() > 0
