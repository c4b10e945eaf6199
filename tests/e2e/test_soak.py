"""The 30-second soak in `make test` (bench/soak.py; `make soak` runs ten
minutes): opensnoop and the exporter (the tutorial's config) under the
full-speed open producer plus a stream of random file names filling the
exporter's 10,000 label sets. Both stay up, the exporter's memory stays flat
once it holds its label sets, it answers every scrape within 100 ms at p99,
and every event is accounted for: received, or reported lost."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from ..conftest import ROOT

spec = importlib.util.spec_from_file_location("soak", ROOT / "bench" / "soak.py")
assert spec is not None and spec.loader is not None
soak = importlib.util.module_from_spec(spec)
sys.modules["soak"] = soak  # dataclasses look their module up by name
spec.loader.exec_module(soak)

SECONDS = 30
P99_MS = 100.0
RSS_GROWTH_KIB = 5 * 1024


@pytest.mark.usefixtures("kernel")
def test_thirty_second_soak(tool):
    tool("gcc")  # builds bench/producer.c
    r = soak.soak(SECONDS)
    report = soak.markdown(r)
    assert r.alive_at_end == {"opensnoop": True, "eunomia-exporter": True}, report
    assert r.scrape_errors == 0 and len(r.scrape_ms) >= SECONDS - 5, report
    assert r.p(0.99) < P99_MS, report
    for name, (start, end) in r.rss_kib.items():
        assert end - start < RSS_GROWTH_KIB, f"{name} grew {end - start} KiB\n{report}"
    # the exporter hides no loss: every run of its BPF programs is an event
    # received or one counted lost (bar the opens of the last instants)
    assert r.exporter_received > 1_000_000, report
    assert 0 <= r.in_flight <= soak.IN_FLIGHT_MAX, report
    assert r.counted == r.exporter_received, report  # each event counted once, overflow included
    # opensnoop reports its losses as "N events lost (of M)", or has none
    if r.lost_report:
        assert r.opensnoop_total is not None and 0 < r.opensnoop_lost <= r.opensnoop_total, report
