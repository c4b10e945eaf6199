"""The exporter config: the tutorial's YAML as written, the additions, and
errors that name the file, the line and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyeunomia.errors import ConfigError
from pyeunomia.exporter.config import DEFAULT_MAX_SERIES, load_config, parse_config, program_from_request
from tests.hostile import fifo, returns_promptly

TUTORIAL = """programs:
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


def test_the_tutorial_config_as_written():
    cfg = parse_config(TUTORIAL, "config.yaml")
    [prog] = cfg.programs
    assert prog.name == "opensnoop" and prog.compiled_ebpf_filename is None and prog.ebpf_data is None
    [counter] = prog.metrics
    assert (counter.kind, counter.name, counter.description) == ("counter", "eunomia_file_open_counter", "test")
    assert [(label.name, label.source) for label in counter.labels] == [
        ("pid", "pid"), ("comm", "comm"), ("filename", "fname")]
    assert counter.map is None and counter.max_series == DEFAULT_MAX_SERIES and counter.expire_after is None
    assert prog.needs_events


def test_json_config_from_a_file(tmp_path: Path):
    doc = {"programs": [{"name": "opensnoop", "metrics": {"counters": [{"name": "opens", "labels": [
        {"name": "comm"}]}]}}]}
    path = tmp_path / "exporter.json"
    path.write_text(json.dumps(doc, indent=2))
    [prog] = load_config(str(path)).programs
    assert prog.metrics[0].labels[0].name == "comm"
    assert prog.base_dir == str(tmp_path)


def test_everything_beyond_the_tutorial():
    text = """programs:
  - name: opensnoop
    options: {pid: 1234, targ_failed: true}
    metrics:
      counters:
        - name: opens_by_result_total
          map: opens
          labels:
            - name: comm
            - name: result
              from: err
              decoders: [errno]
      histograms:
        - name: fname_length
          value: fname_len
          buckets: {type: exp2, min: 0, max: 8, multiplier: 2}
          expire_after: 5m
          max_series: 50
        - name: mode_bits
          value: mode
          buckets: {type: linear, start: 0, width: 100, count: 5}
        - name: explicit
          value: ret
          buckets: {type: explicit, bounds: [-1, 0, 10]}
      gauges:
        - name: last_uid
          value: uid
          labels:
            - name: flags
              decoders:
                - open_flags
                - {name: static_map, map: {O_RDONLY: ro}}
"""
    [prog] = parse_config(text, "c.yaml").programs
    assert {k: v for k, (v, _at) in prog.options.items()} == {"pid": 1234, "targ_failed": True}
    by_name = {m.name: m for m in prog.metrics}
    opens = by_name["opens_by_result_total"]
    assert opens.map == "opens" and opens.exposed_name == "opens_by_result"
    assert [d.name for d in opens.labels[1].decoders] == ["errno"]
    exp2 = by_name["fname_length"].buckets
    assert exp2 is not None and exp2.bounds == tuple(float(2 ** k) for k in range(9)) and exp2.multiplier == 2
    assert by_name["fname_length"].expire_after == 300 and by_name["fname_length"].max_series == 50
    linear = by_name["mode_bits"].buckets
    assert linear is not None and linear.bounds == (0, 100, 200, 300, 400)
    assert by_name["explicit"].buckets.bounds == (-1, 0, 10)
    gauge = by_name["last_uid"]
    assert gauge.kind == "gauge" and [d.name for d in gauge.labels[0].decoders] == ["open_flags", "static_map"]
    assert gauge.labels[0].decoders[1].params == {"map": {"O_RDONLY": "ro"}}
    assert prog.needs_events


def _metric(body: str) -> str:
    return "programs:\n  - name: opensnoop\n    metrics:\n      counters:\n" + body


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    ("program:\n  - name: x\n", 1, "program", "unknown key 'program'"),
    ("programs: {}\n", 1, "programs", "expected a list"),
    ("- a\n", 1, "", "expected the config as a mapping"),
    ("", 1, "", "expected the config as a mapping, got nothing"),
    ("programs:\n  - metrics: {counters: [{name: a}]}\n", 2, "programs[0].name", "missing 'name'"),
    ("programs:\n  - name: x\n", 2, "programs[0].metrics", "missing 'metrics'"),
    ("programs:\n  - name: x\n    metrics: {}\n", 3, "programs[0].metrics", "no metrics"),
    (_metric("        - name: 9bad\n"), 5, "programs[0].metrics.counters[0].name", "not a Prometheus metric name"),
    (_metric("        - name: eunomia_exporter_x\n"), 5, "programs[0].metrics.counters[0].name", "own metrics"),
    (_metric("        - name: a\n          labels:\n            - name: le\n"), 7,
     "programs[0].metrics.counters[0].labels[0].name", "taken by histogram buckets"),
    (_metric("        - name: a\n          labels:\n            - name: x\n            - name: x\n"), 8,
     "programs[0].metrics.counters[0].labels[1].name", "given twice"),
    (_metric("        - name: a\n          labels:\n            - name: x\n              decoders: [nope]\n"), 8,
     "programs[0].metrics.counters[0].labels[0].decoders[0]", "unknown label decoder 'nope'"),
    (_metric("        - name: a\n          labels:\n            - name: x\n              decoders:\n"
             "                - {name: static_map}\n"), 9,
     "programs[0].metrics.counters[0].labels[0].decoders[0]", "map: expected a mapping"),
    (_metric("        - name: a\n          labels:\n            - name: x\n              decoders:\n"
             "                - {name: errno, base: 8}\n"), 9,
     "programs[0].metrics.counters[0].labels[0].decoders[0].base", "no parameter 'base'"),
    (_metric("        - name: a\n          labels:\n            - name: x\n              decoders:\n"
             "                - errno\n                - {name: inet, family: af}\n"), 10,
     "programs[0].metrics.counters[0].labels[0].decoders[1].family", "only a label's first decoder can read"),
    (_metric("        - name: a\n          max_series: 0\n"), 6, "programs[0].metrics.counters[0].max_series",
     "1 or more"),
    (_metric("        - name: a\n          expire_after: soon\n"), 6,
     "programs[0].metrics.counters[0].expire_after", "duration"),
    (_metric("        - name: a\n          map: opens\n          expire_after: 5m\n"), 7,
     "programs[0].metrics.counters[0].expire_after", "map metric"),
    (_metric("        - name: a\n        - name: a_total\n"), 6, "programs[0].metrics.counters[1].name",
     "already defined"),
    ("programs:\n  - name: x\n    ebpf_data: '{}'\n    compiled_ebpf_filename: p.json\n"
     "    metrics: {counters: [{name: a}]}\n", 3, "programs[0].ebpf_data", "not both"),
    ("programs:\n  - name: x\n    options: [1]\n    metrics: {counters: [{name: a}]}\n", 3,
     "programs[0].options", "mapping of the program's globals"),
    ("programs:\n  - name: x\n    metrics:\n      histograms:\n        - name: h\n          value: v\n", 5,
     "programs[0].metrics.histograms[0].buckets", "needs 'buckets'"),
    ("programs:\n  - name: x\n    metrics:\n      histograms:\n        - name: h\n          buckets: {type: exp2, "
     "max: 3}\n", 5, "programs[0].metrics.histograms[0].value", "needs 'value'"),
    ("programs:\n  - name: x\n    metrics:\n      histograms:\n        - name: h\n          value: v\n"
     "          buckets:\n            type: exp2\n            max: 99\n", 9,
     "programs[0].metrics.histograms[0].buckets.max", "from 0 to 63"),
    ("programs:\n  - name: x\n    metrics:\n      histograms:\n        - name: h\n          value: v\n"
     "          buckets: {type: explicit, bounds: [1, 1]}\n", 7,
     "programs[0].metrics.histograms[0].buckets.bounds[1]", "must increase"),
    ("programs:\n  - name: x\n    metrics:\n      histograms:\n        - name: h\n          value: v\n"
     "          buckets: {type: linear, start: 0, width: 1}\n", 7,
     "programs[0].metrics.histograms[0].buckets.count", "missing 'count'"),
    ("programs:\n  - name: x\n    metrics:\n      histograms:\n        - name: h\n          map: m\n"
     "          buckets: {type: linear, start: 0, width: 1, count: 2}\n", 7,
     "programs[0].metrics.histograms[0].buckets.start", "linear slots set its buckets"),
    ("programs:\n  - name: x\n    metrics:\n      histograms:\n        - name: h\n          value: v\n"
     "          buckets: {type: exp2, max: 3, step: 2}\n", 7,
     "programs[0].metrics.histograms[0].buckets.step", "unknown key 'step'"),
])
def test_errors_name_file_line_and_key(text, line, key, words):
    with pytest.raises(ConfigError, match=words) as e:
        parse_config(text, "my.yaml")
    assert (e.value.file, e.value.line, e.value.key) == ("my.yaml", line, key)
    assert str(e.value).startswith(f"my.yaml:{line}")
    assert "\n" not in str(e.value)


def _histogram(buckets: str) -> str:
    return ("programs:\n  - name: x\n    metrics:\n      histograms:\n        - name: h\n          value: v\n"
            f"          buckets: {buckets}\n")


@pytest.mark.parametrize(("buckets", "key", "words"), [
    ("{type: exp2, min: 0, max: 63, multiplier: 1.0e+308}", "multiplier",
     "bucket bound 2 * 1e+308 is not a finite number: use a smaller multiplier"),
    ("{type: explicit, bounds: [1, 2], multiplier: 1.0e+308}", "multiplier",
     "bucket bound 2 * 1e+308 is not a finite number: use a smaller multiplier"),
    ("{type: linear, start: 1, width: 1, count: 3, multiplier: 1.0e+308}", "multiplier",
     "bucket bound 2 * 1e+308 is not a finite number"),
    ("{type: explicit, bounds: [1.0e-10, 2.0e-10], multiplier: 1.0e-320}", "multiplier",  # underflow to 0
     "bucket bounds 1e-10 and 2e-10 are both 0 once exported: use a multiplier nearer 1"),
    ("{type: explicit, bounds: [1, 1.2], multiplier: 5.0e-324}", "multiplier",  # rounded together
     "bucket bounds 1 and 1.2 are both 4.94066e-324 once exported: use a multiplier nearer 1"),
    ("{type: linear, start: 1.0e+308, width: 1.0e+308, count: 3}", "width",
     "bucket bound inf is not a finite number: use a smaller start or width"),
    ("{type: linear, start: 1.0e+17, width: 1, count: 3}", "width",
     "bucket bounds 1e+17 and 1e+17 are both 1e+17 once exported: use a larger width, or a start nearer 0"),
])
def test_every_exported_bucket_bound_is_finite_and_increasing(buckets, key, words):
    """Prometheus would get +Inf buckets, or two buckets with one bound:
    one line naming the key instead."""
    with pytest.raises(ConfigError) as e:
        parse_config(_histogram(buckets), "my.yaml")
    assert e.value.key == f"programs[0].metrics.histograms[0].buckets.{key}"
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_huge_multiplier_in_a_json_config(tmp_path: Path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"programs": [{"name": "x", "metrics": {"histograms": [
        {"name": "h", "value": "v", "buckets": {"type": "exp2", "min": 0, "max": 63, "multiplier": 1e308}}]}}]}))
    with pytest.raises(ConfigError, match="not a finite number: use a smaller multiplier"):
        load_config(str(path))


@pytest.mark.parametrize(("kept", "refused"), [
    ("{type: exp2, min: 0, max: 63, multiplier: 1.0e+289}",       # 2^63 * 1e289 is still finite
     "{type: exp2, min: 0, max: 63, multiplier: 1.0e+290}"),
    ("{type: linear, start: 0, width: 1, count: 3, multiplier: 1.0e-323}",    # subnormal, but distinct
     "{type: linear, start: 0, width: 0.1, count: 3, multiplier: 1.0e-323}"),  # 0.1 * 1e-323 is 0
])
def test_bounds_just_inside_the_limits_are_kept(kept, refused):
    assert parse_config(_histogram(kept), "my.yaml").programs[0].metrics[0].buckets is not None
    with pytest.raises(ConfigError, match=r"buckets\.multiplier: "):
        parse_config(_histogram(refused), "my.yaml")


def test_names_clash_across_programs():
    text = TUTORIAL + TUTORIAL.replace("programs:\n", "")
    with pytest.raises(ConfigError, match="already defined by program 'opensnoop'") as e:
        parse_config(text, "c.yaml")
    assert e.value.line == 16


def test_missing_file_and_bad_bytes(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file: pass the config with -c FILE") as e:
        load_config(str(tmp_path / "absent.yaml"))
    assert e.value.file.endswith("absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"programs: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(str(tmp_path))


def test_a_fifo_config_is_refused_without_blocking(tmp_path: Path):
    path = fifo(tmp_path / "config.yaml")
    err = returns_promptly(lambda: load_config(str(path)), [path])
    assert isinstance(err, ConfigError)
    assert str(err) == f"{path}: not a regular file (a FIFO): pass the config file with -c FILE"


def test_a_config_over_16_mib_is_refused_unread(tmp_path: Path):
    """It was read up to 16 MiB and cut there, silently."""
    path = tmp_path / "config.yaml"
    with path.open("wb") as f:
        f.write(b"programs: []\n")
        f.truncate((16 << 20) + 1)
    with pytest.raises(ConfigError, match=r"larger than 16 MiB: a config is KBs") as e:
        load_config(str(path))
    assert e.value.line is None


def test_a_request_body_over_4_mib_is_refused_unparsed():
    body = json.dumps({"name": "opensnoop", "metrics": {"counters": [{"name": "c"}]},
                       "ebpf_data": "x" * (4 << 20)}).encode()
    with pytest.raises(ConfigError) as e:
        program_from_request(body, "/")
    assert str(e.value) == ("<request>: the body is over 4 MiB: name a large package with compiled_ebpf_filename "
                            "instead of sending it in ebpf_data")


@pytest.mark.parametrize("number", ["9" * 5000, "-" + "9" * 4301, "1" + "0" * 39])
def test_a_request_with_a_huge_number_names_its_key(number):
    """5000 digits were a ValueError out of json.loads: 'internal error', a 500."""
    body = b'{"name": "opensnoop", "options": {"pid": ' + number.encode() + b'}, "metrics": {"counters": []}}'
    with pytest.raises(ConfigError) as e:
        program_from_request(body, "/")
    assert (e.value.file, e.value.key) == ("<request>", "options.pid")
    assert str(e.value) == (f"<request>: options.pid: a whole number of {len(number)} characters: no setting takes "
                            "one wider than 128 bits")


def test_a_config_with_a_huge_number_names_its_line():
    with pytest.raises(ConfigError) as e:
        parse_config("programs:\n  - name: x\n    options:\n      pid: " + "9" * 5000 + "\n", "c.yaml")
    assert e.value.line == 4 and "no setting takes one wider than 128 bits" in str(e.value)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("1.5m", 90), ("2h", 7200),
                                               ("250ms", 0.25), ("1d", 86400)])
def test_durations(text, seconds):
    cfg = parse_config(_metric(f"        - name: a\n          expire_after: {text}\n"), "c.yaml")
    assert cfg.programs[0].metrics[0].expire_after == seconds


def test_empty_program_list_is_allowed():
    assert parse_config("programs: []\n", "c.yaml").programs == ()
