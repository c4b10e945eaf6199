"""The runner from Python: open a package, set globals, iterate decoded events."""

from __future__ import annotations

import subprocess

import pytest

from pyeunomia import Program, open_package

from .helpers import UPSTREAM, temp_dir, unique_executable

pytestmark = pytest.mark.usefixtures("kernel")


def test_events_as_dicts():
    exe = unique_executable(temp_dir())
    package = open_package(str(UPSTREAM / "bootstrap.json"))
    with Program(package, {"min_duration_ns": 0}) as prog:
        assert prog.values == {"min_duration_ns": 0}
        subprocess.run([str(exe)], check=True)
        mine = [e for e in prog.events(duration=1.0) if e["comm"] == exe.name]
    assert [e["exit_event"] for e in mine] == [False, True]
    assert mine[0]["filename"] == str(exe)


def test_bad_global_value_is_refused_before_loading():
    from pyeunomia.errors import UsageError
    package = open_package(str(UPSTREAM / "bootstrap.json"))
    with pytest.raises(UsageError, match=r"min_duration_ns.*from 0 to 18446744073709551615"):
        Program(package, {"min_duration_ns": -1})
    with pytest.raises(UsageError, match="not a settable global"):
        Program(package, {"nope": 1})


def test_package_from_bytes_and_sampled_map_callback():
    data = (UPSTREAM / "runqlat.json").read_bytes()
    with Program(open_package(data)) as prog:
        samples = [e for e in prog.events(duration=1.3, include_samples=True) if e.get("map") == "hists"]
    assert samples
    assert len(samples[0]["value"]["slots"]) == 26
