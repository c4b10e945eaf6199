"""Nested structs, arrays of structs, a 2-D array and a union, sent through a
perf event array from a struct the program only has as a local variable."""

from __future__ import annotations

import os

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import running
from .test_ecc_globals import Opener

pytestmark = pytest.mark.usefixtures("kernel", "compiler")


def test_nested_event_through_a_perf_buffer():
    package = str(built("nested") / "package.json")
    with running("ecli", "run", "--json", package, "--target_pid", str(os.getpid()), "--base", "7") as ecli, \
            Opener("/tmp/pyeu-nested-no-such-file"):
        (event,) = ecli.json_events(lambda e: e["pid"] == os.getpid())
    assert event["corners"] == [{"x": 7, "y": -7}, {"x": 8, "y": -8}]
    assert event["detail"] == {"codes": [70, 71, 72], "tag": "tagged", "where": {"x": -1, "y": 7}}
    assert event["grid"] == [[700, 701, 702], [710, 711, 712]]
    assert event["word"] == {"whole": 0x04030201, "parts": [1, 2, 3, 4]}
    assert event["comm"] == open("/proc/self/comm").read().strip()


def test_nested_event_as_a_table_row():
    package = str(built("nested") / "package.json")
    with running("ecli", "run", package, "--target_pid", str(os.getpid())) as ecli, \
            Opener("/tmp/pyeu-nested-no-such-file"):
        lines = ecli.wait_for(lambda line: line.split()[1:2] == [str(os.getpid())])
    assert lines[0].split() == ["time", "pid", "corners", "detail", "grid", "word", "comm"]
    assert '[{"x":1,"y":-1},{"x":2,"y":-2}]' in lines[-1]
    assert '[[100,101,102],[110,111,112]]' in lines[-1]
