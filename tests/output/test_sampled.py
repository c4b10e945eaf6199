"""Sampled maps printed: an interval with an empty map prints nothing (no bare
timestamp line, as bpftrace prints nothing for an empty map)."""

from __future__ import annotations

import io

import pytest

from pyeunomia.output.sampled import SamplePrinter


@pytest.mark.parametrize("as_json", [False, True])
def test_an_empty_interval_prints_nothing(as_json):
    out = io.BytesIO()
    printer = SamplePrinter(out, as_json)
    printer.write_sample("counts", "default_kv", "(unit)", [])
    assert out.getvalue() == b""
    printer.write_sample("counts", "default_kv", "(unit)", [(1, 5)])
    text = out.getvalue().decode()
    assert ('"key":1' in text and '"value":5' in text) if as_json else text.splitlines()[1:] == ["1 5"]
