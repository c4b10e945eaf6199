"""The upstream bootstrap package, run unchanged: one event per exec and exit."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from .helpers import UPSTREAM, running, temp_dir, unique_executable

BOOTSTRAP = str(UPSTREAM / "bootstrap.json")
pytestmark = pytest.mark.usefixtures("kernel")


def test_json_rows_for_exec_and_exit():
    exe = unique_executable(temp_dir())
    with running("ecli", "run", "--json", BOOTSTRAP) as ecli:
        child = subprocess.run([str(exe)], check=True)
        assert child.returncode == 0
        events = ecli.json_events(lambda e: e["comm"] == exe.name, count=2)
    exec_event, exit_event = events
    assert exec_event["exit_event"] is False
    assert exec_event["filename"] == str(exe)
    assert exec_event["et"] == "EVENT_TYPE__ENTER"  # the enum, by name
    assert exit_event["exit_event"] is True
    assert exit_event["pid"] == exec_event["pid"]
    assert exit_event["exit_code"] == 0
    assert exit_event["duration_ns"] > 0
    import os
    assert exec_event["ppid"] == os.getpid()
    assert set(exec_event) == {"pid", "ppid", "exit_code", "duration_ns", "comm", "filename", "exit_event", "et"}


def test_table_has_header_and_time_first():
    exe = unique_executable(temp_dir())
    with running("ecli", "run", BOOTSTRAP) as ecli:
        subprocess.run([str(exe)], check=True)
        lines = ecli.wait_for(lambda line: exe.name in line and "true" in line.split())
    header = lines[0].split()
    assert header == ["time", "pid", "ppid", "exit_code", "duration_ns", "comm", "filename", "exit_event", "et"]
    exec_row = next(line for line in lines if exe.name in line and str(exe) in line)
    assert re.match(r"^\d\d:\d\d:\d\d ", exec_row)
    cells = exec_row.split()
    assert cells[5] == exe.name and cells[6] == str(exe) and cells[7] == "false"
    # aligned: each column starts where the header's name does
    assert exec_row.index(exe.name) == lines[0].index("comm")


def test_min_duration_filters_short_processes():
    exe = unique_executable(temp_dir())
    with running("ecli", "run", "--json", BOOTSTRAP, "--min_duration_ns", "1000000000") as ecli:
        subprocess.run([str(exe)], check=True)
        sleeper = subprocess.Popen(["sleep", "1.2"])
        sleeper.wait()
        events = ecli.json_events(lambda e: e["pid"] == sleeper.pid)
        time.sleep(0.3)
        code = ecli.stop()
        rest = [line for line in ecli.rest() if exe.name in line]
    assert code == 0
    assert events[0]["exit_event"] is True and events[0]["duration_ns"] >= 1_000_000_000
    assert rest == []  # the short-lived copy of true produced nothing
