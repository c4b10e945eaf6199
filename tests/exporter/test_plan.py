"""Configs checked against real packages (the built-in opensnoop, upstream's
bootstrap and runqlat): fields, globals, maps, package sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pyeunomia.errors import ConfigError
from pyeunomia.exporter.config import parse_config
from pyeunomia.exporter.plan import plan_program
from pyeunomia.source import builtin_packages

from ..conftest import UPSTREAM
from ..hostile import fifo, returns_promptly
from .util import config, plan_of

TUTORIAL_METRICS = """      counters:
        - name: eunomia_file_open_counter
          description: test
          labels:
            - name: pid
            - name: comm
            - name: filename
              from: fname
"""
OPENS_MAP = """      counters:
        - name: opens
          map: opens
          labels:
            - name: comm
            - name: result
              from: err
              decoders: [errno]
"""


def test_tutorial_plan_reads_three_event_fields():
    plan = plan_of(config(TUTORIAL_METRICS, extra="    compiled_ebpf_filename:\n"))
    assert plan.package.name == "opensnoop" and plan.layout is not None
    [metric] = plan.metrics
    assert [(label.name, label.field.name) for label in metric.labels] == [
        ("pid", "pid"), ("comm", "comm"), ("filename", "fname")]
    assert plan.values == {}  # events are needed: emit_events stays on


def test_options_by_global_name_long_name_and_without_targ():
    plan = plan_of(config(TUTORIAL_METRICS, extra="    options:\n      pid: 1234\n      targ_failed: true\n"
                          "      comm: bash\n      wakeup_bytes: '0x100'\n"))
    assert plan.values == {"targ_pid": 1234, "targ_failed": True, "targ_comm": "bash", "wakeup_bytes": 256}


def test_a_map_only_program_turns_off_its_event_stream():
    plan = plan_of(config(OPENS_MAP, extra="    options: {count_opens: true}\n"))
    assert plan.values == {"count_opens": True, "emit_events": False}
    assert plan.layout is None
    [metric] = plan.metrics
    assert metric.map is not None and metric.map.map_name == "opens" and not metric.map.percpu
    key = b"bash".ljust(16, b"\0") + (2).to_bytes(4, "little")
    raw = metric.map.key_values(key)
    assert [label.text(v) for label, v in zip(metric.labels, raw, strict=True)] == ["bash", "ENOENT"]
    assert metric.map.value((7).to_bytes(8, "little")) == 7


def test_emit_events_set_by_hand_is_kept():
    plan = plan_of(config(OPENS_MAP, extra="    options: {count_opens: true, emit_events: true}\n"))
    assert plan.values["emit_events"] is True


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        plan_of(text)
    return e.value


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    (config(TUTORIAL_METRICS.replace("from: fname", "from: fnam")), 11,
     "programs[0].metrics.counters[0].labels[2].from", "no field 'fnam' (fields: ts, cgroup_id"),
    (config("      counters:\n        - name: a\n          labels:\n            - name: fnam\n"), 7,
     "programs[0].metrics.counters[0].labels[0].name", "no field 'fnam'"),
    (config(TUTORIAL_METRICS, extra="    options: {pid: -5x}\n"), 3, "programs[0].options.pid", "targ_pid"),
    (config(TUTORIAL_METRICS, extra="    options: {nope: 1}\n"), 3, "programs[0].options.nope",
     "no global 'nope' (globals: targ_pid"),
    (config(TUTORIAL_METRICS, extra="    options: {pid: 1, targ_pid: 2}\n"), 3, "programs[0].options.targ_pid",
     "already set"),
    (config("      counters:\n        - name: a\n          labels:\n            - name: comm\n"
            "              decoders: [errno]\n"), 8, "programs[0].metrics.counters[0].labels[0].decoders[0]",
     "takes int values, and comm is char[16]"),
    (config("      gauges:\n        - name: a\n          value: comm\n"), 6, "programs[0].metrics.gauges[0].value",
     "must be a number"),
    (config("      counters:\n        - name: a\n          map: nope\n"), 6, "programs[0].metrics.counters[0].map",
     "no map 'nope' (hash and array maps: cgroup_filter, opens, "),
    (config("      counters:\n        - name: a\n          map: events\n"), 6,
     "programs[0].metrics.counters[0].map", "ringbuf map"),
    (config("      counters:\n        - name: a\n          map: opens\n          labels:\n"
            "            - name: pid\n"), 8, "programs[0].metrics.counters[0].labels[0].name",
     "the key of map 'opens' has no member 'pid' (members: comm, err)"),
    (config("      histograms:\n        - name: a\n          map: opens\n"), 6,
     "programs[0].metrics.histograms[0].map", "array of integer slot counts"),
    (config(TUTORIAL_METRICS, name="nosuch"), 2, "programs[0].name", "no built-in package named 'nosuch'"),
    (config(TUTORIAL_METRICS, extra="    compiled_ebpf_filename: absent.json\n"), 3,
     "programs[0].compiled_ebpf_filename", "no such package file"),
    (config(TUTORIAL_METRICS, extra="    ebpf_data: '{\"meta\": 1}'\n"), 3, "programs[0].ebpf_data",
     "cannot open the package"),
])
def test_errors_point_at_the_line(text, line, key, words):
    e = _error(text)
    assert (e.line, e.key) == (line, key), str(e)
    assert words in str(e)


def test_package_paths_are_relative_to_the_config(tmp_path: Path):
    shutil.copy(builtin_packages()["opensnoop"], tmp_path / "snoop.json")
    text = config(TUTORIAL_METRICS, extra="    compiled_ebpf_filename: snoop.json\n")
    [program] = parse_config(text, str(tmp_path / "exporter.yaml")).programs
    assert plan_program(program).package.name == "opensnoop"


def test_a_fifo_as_package_file_is_refused_without_blocking(tmp_path: Path):
    """It once blocked an API thread forever, waiting for a writer."""
    path = fifo(tmp_path / "snoop.json")
    text = config(TUTORIAL_METRICS, extra="    compiled_ebpf_filename: snoop.json\n")
    [program] = parse_config(text, str(tmp_path / "exporter.yaml")).programs
    err = returns_promptly(lambda: plan_program(program), [path])
    assert isinstance(err, ConfigError) and (err.line, err.key) == (3, "programs[0].compiled_ebpf_filename")
    assert f"cannot open the package: {path}: not a regular file (a FIFO)" in str(err)


def test_inline_package_text():
    data = Path(builtin_packages()["opensnoop"]).read_text()
    text = config(TUTORIAL_METRICS, name="anything", extra=f"    ebpf_data: {json.dumps(data)}\n")
    assert plan_of(text).package.name == "opensnoop"


def test_upstream_packages_events_and_a_log2_map():
    boot = plan_of(config("      counters:\n        - name: execs\n          labels:\n            - name: comm\n"
                          "            - name: exit_event\n", name="bootstrap",
                          extra=f"    compiled_ebpf_filename: {UPSTREAM / 'bootstrap.json'}\n"))
    assert [label.field.name for label in boot.metrics[0].labels] == ["comm", "exit_event"]
    runq = plan_of(config("      histograms:\n        - name: runq_latency\n          map: hists\n"
                          "          buckets: {type: exp2, multiplier: 0.000001}\n", name="runqlat",
                          extra=f"    compiled_ebpf_filename: {UPSTREAM / 'runqlat.json'}\n"))
    [hist] = runq.metrics
    assert hist.map is not None
    slots = hist.map.value(b"".join((i + 1).to_bytes(4, "little") for i in range(26)) + b"x" * 16)
    assert slots == list(range(1, 27))
    with pytest.raises(ConfigError, match="runqlat sends no events"):
        plan_of(config("      counters:\n        - name: a\n", name="runqlat",
                       extra=f"    compiled_ebpf_filename: {UPSTREAM / 'runqlat.json'}\n"))


def test_a_map_histograms_bounds_are_checked_against_its_slots():
    """runqlat's 26 log2 slots: (2^26 - 1) * 1e302 is beyond a float."""
    extra = f"    compiled_ebpf_filename: {UPSTREAM / 'runqlat.json'}\n"
    hist = "      histograms:\n        - name: runq_latency\n          map: hists\n          buckets: {type: exp2%s}\n"
    plan_of(config(hist % ", multiplier: 1.0e+300", name="runqlat", extra=extra))
    e = _error(config(hist % ", multiplier: 1.0e+302", name="runqlat", extra=extra))
    assert e.key == "programs[0].metrics.histograms[0].buckets.multiplier"
    assert "is not a finite number (map 'hists' has 26 log2 slots): use a smaller multiplier" in str(e)


def test_config_and_plan_never_import_the_libbpf_binding():
    import subprocess
    import sys

    code = ("import sys\n"
            "from pyeunomia.exporter.config import load_config\n"
            "from pyeunomia.exporter.plan import plan_all\n"
            "plan_all(load_config(sys.argv[1]).programs)\n"
            "print(sorted(m for m in ('pyeunomia.kernel.libbpf', 'ctypes', 'prometheus_client')"
            " if m in sys.modules))\n")
    for example in ("opensnoop.yaml", "opensnoop-kernel.yaml"):
        out = subprocess.run([sys.executable, "-c", code, str(UPSTREAM.parents[2] / "examples" / example)],
                             capture_output=True, text=True, check=True).stdout
        assert out == "[]\n", out
