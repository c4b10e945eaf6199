"""Bounded memory: a process opening 50,000 distinct file names against a
limit of 1000 label sets. The series count stays at 1000, the overflow series
and the refused counter account for the rest, and the exporter's RSS stays
flat while the names keep coming."""

from __future__ import annotations

import pytest

from ..exporter.live import Exporter, Opener
from .helpers import temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

NAMES = 50_000
ROUND = 5_000
LIMIT = 1000
COUNTER = "eunomia_file_open_counter_total"
RSS_GROWTH_KIB = 2048


def test_fifty_thousand_names_against_a_limit_of_a_thousand():
    tmp = temp_dir()
    child = Opener(tmp, "n")
    config = f"""programs:
  - name: opensnoop
    options: {{pid: {child.pid}}}
    metrics:
      counters:
        - name: eunomia_file_open_counter
          description: opens of files that do not exist
          max_series: {LIMIT}
          labels:
            - name: pid
            - name: comm
            - name: filename
              from: fname
"""
    prefix = str(tmp / "no-such-file-")
    with Exporter(tmp, config) as exp:
        received = "eunomia_exporter_events_received_total"
        rss = []
        for start in range(0, NAMES, ROUND):
            child.do("many", prefix, start, ROUND)
            exp.wait_for(lambda n=start + ROUND: exp.value(received, id="0", program="opensnoop") == n,
                         what=f"{start + ROUND} events")
            rss.append(exp.rss_kib())
        samples = exp.samples(COUNTER)
        overflow = samples.pop((("overflow", "true"),))
        assert len(samples) == LIMIT
        assert all(dict(k)["filename"].startswith(prefix) and dict(k)["comm"] == child.name for k in samples)
        assert sum(samples.values()) == LIMIT  # each name once
        assert overflow == NAMES - LIMIT
        assert exp.value("eunomia_exporter_series", metric="eunomia_file_open_counter") == LIMIT
        assert exp.value("eunomia_exporter_label_sets_refused_total", metric="eunomia_file_open_counter") == \
            NAMES - LIMIT
        assert exp.value("eunomia_exporter_events_lost_total", id="0", program="opensnoop") == 0
        # flat: after the first round filled the limit, 45,000 more names add (almost) nothing
        growth = max(rss[1:]) - rss[1]
        assert growth < RSS_GROWTH_KIB, f"RSS per round (KiB): {rss}"
    child.close()
