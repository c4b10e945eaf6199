"""A map sampled as a log2 histogram (`/// @sample`), filled by real opens."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import running

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

OPENS = 5


def open_missing(times: int) -> None:
    for _ in range(times):
        try:
            os.close(os.open("/tmp/pyeu-hist-no-such-file", os.O_RDONLY))
        except OSError:
            pass


def test_sampled_histogram_as_json():
    package = str(built("hist") / "package.json")
    with running("ecli", "run", "--json", package, "--target_pid", str(os.getpid()), "--value", "100",
                 ready="attached") as ecli:
        open_missing(OPENS)

        def counted(line: str) -> bool:
            entry = json.loads(line)
            return entry.get("map") == "hists" and entry["value"]["slots"][6] >= OPENS
        lines = ecli.wait_for(counted)
    entry = json.loads(lines[-1])
    slots = entry["value"]["slots"]
    assert len(slots) == 26
    assert [i for i, n in enumerate(slots) if n] == [6]  # 100 is in [64, 128): slot 6 only
    assert entry["key"] == 0
    assert entry["value"]["comm"] == open("/proc/self/comm").read().strip()


def test_sampled_histogram_as_text():
    package = str(built("hist") / "package.json")
    with running("ecli", "run", package, "--target_pid", str(os.getpid()), "--value", "3") as ecli:
        open_missing(OPENS)
        lines = ecli.wait_for(lambda line: bool(re.match(r"\s+2 -> 3\s+: ([5-9]|\d\d+)\s", line)))
    assert any(re.fullmatch(r" {5}calls {15}: count    distribution\n", line) for line in lines)
    row = lines[-1]
    assert row.rstrip().endswith("|" + "*" * 40 + "|")  # the only bucket: the longest bar
