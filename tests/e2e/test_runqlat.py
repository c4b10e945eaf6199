"""The upstream runqlat package: a sampled log2 histogram map, printed every second."""

from __future__ import annotations

import json
import re

import pytest

from .helpers import UPSTREAM, run

RUNQLAT = str(UPSTREAM / "runqlat.json")
pytestmark = pytest.mark.usefixtures("kernel")
ROW = re.compile(r"^\s+(\d+) -> (\d+)\s+: (\d+)\s+\|(\*{0,40})\s*\|$")


def test_histogram_every_second():
    done = run("ecli", "run", "-d", "2.6", RUNQLAT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    stamps = [line for line in lines if re.fullmatch(r"\d\d:\d\d:\d\d", line)]
    assert len(stamps) == 2  # one sample per interval of 1000 ms in 2.6 s
    headers = [line for line in lines if line.endswith(": count    distribution")]
    assert len(headers) >= 2
    rows = [ROW.match(line) for line in lines if "->" in line]
    assert rows and all(rows)
    counts = [int(m.group(3)) for m in rows if m]
    assert sum(counts) > 0
    for m in rows:
        assert m is not None
        low, high = int(m.group(1)), int(m.group(2))
        assert high == (2 * low - 1 if low else 1) or (low == 0 and high == 1)
    assert "time" not in done.stdout.split()  # no event table header without an event buffer


def test_histogram_as_json():
    done = run("ecli", "run", "-j", "-d", "1.5", RUNQLAT)
    assert done.returncode == 0, done.stderr
    samples = [json.loads(line) for line in done.stdout.splitlines()]
    assert samples and all(s["map"] == "hists" for s in samples)
    assert len(samples[0]["value"]["slots"]) == 26
    assert sum(sum(s["value"]["slots"]) for s in samples) > 0
