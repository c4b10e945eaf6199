"""Upstream's top-level run settings of a package's meta, with its defaults
(bpf-loader-rs EunomiaObjectMeta), checked before anything loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.errors import PackageError
from pyeunomia.format.package import Package
from pyeunomia.format.runmeta import RunMeta, run_meta

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def test_upstream_defaults_when_left_out():
    assert run_meta({"bpf_skel": {}}, "m") == RunMeta(64, 10, 100, None, False)
    assert run_meta(None, "m") == RunMeta()


def test_every_field_read():
    meta = {"perf_buffer_pages": 8, "perf_buffer_time_ms": 0, "poll_timeout_ms": -1, "print_header": False,
            "debug_verbose": True}
    assert run_meta(meta, "m") == RunMeta(8, 0, -1, False, True)
    assert run_meta({"print_header": True}, "m").print_header is True


@pytest.mark.parametrize(("key", "value", "says"), [
    ("perf_buffer_pages", 3, "m: 'perf_buffer_pages' is 3, and libbpf takes only a power of two (1, 2, 4 ... 4096): "
                             "change it or leave it out (64)"),
    ("perf_buffer_pages", 0, "m: 'perf_buffer_pages' must be an integer from 1 to 4096, not 0"),
    ("perf_buffer_pages", 8192, "m: 'perf_buffer_pages' must be an integer from 1 to 4096, not 8192"),
    ("perf_buffer_pages", "64", "m: 'perf_buffer_pages' must be an integer"),
    ("perf_buffer_time_ms", -1, "m: 'perf_buffer_time_ms' must be an integer from 0 to 2147483647, not -1"),
    ("poll_timeout_ms", 1 << 31,
     "m: 'poll_timeout_ms' must be an integer from -2147483648 to 2147483647, not 2147483648"),
    ("poll_timeout_ms", True, "m: 'poll_timeout_ms' must be an integer"),
    ("print_header", 0, "m: 'print_header' must be true or false"),
    ("debug_verbose", "yes", "m: 'debug_verbose' must be true or false"),
])
def test_bad_values_name_the_key(key: str, value: Any, says: str):
    with pytest.raises(PackageError) as e:
        run_meta({key: value}, "m")
    assert str(e.value) == says


def test_a_package_with_bad_pages_is_refused_when_read():
    doc = json.loads((UPSTREAM / "bootstrap.json").read_text())
    doc["meta"]["perf_buffer_pages"] = 48
    with pytest.raises(PackageError, match=r"^b.json: meta: 'perf_buffer_pages' is 48, and libbpf takes only"):
        Package.from_json(json.dumps(doc), "b.json")
    doc["meta"]["perf_buffer_pages"] = 16
    assert Package.from_json(json.dumps(doc), "b.json").meta.perf_buffer_pages == 16
