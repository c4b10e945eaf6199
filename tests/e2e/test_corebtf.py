"""The minimal kernel BTF cache, with the real kernel: the first load writes
it, later loads relocate against it and see the same events, and a damaged
file costs nothing but its own replacement."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pyeunomia import open_package
from pyeunomia.runner import corebtf
from pyeunomia.runner.loader import LoadedObject
from pyeunomia.runner.program import Program

from .helpers import UPSTREAM, temp_dir, unique_executable

pytestmark = pytest.mark.usefixtures("kernel")


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(corebtf.DISABLE_ENV, raising=False)
    return tmp_path


def _exec_events(package_bytes: bytes) -> tuple[list[dict[str, object]], str | None]:
    exe = unique_executable(temp_dir())
    with Program(open_package(package_bytes), {"min_duration_ns": 0}) as prog:
        used = prog.loaded.core_btf
        subprocess.run([str(exe)], check=True)
        mine = [e for e in prog.events(duration=1.0) if e["comm"] == exe.name]
    return mine, used


def test_first_load_writes_the_cache_and_later_loads_use_it(cache_home: Path) -> None:
    data = (UPSTREAM / "bootstrap.json").read_bytes()
    package = open_package(data)
    path = corebtf.cache_path(package.object)
    assert path is not None and not os.path.exists(path)

    first, used = _exec_events(data)
    assert used is None
    assert os.path.getsize(path) > 0
    assert corebtf.trusted(path)

    second, used = _exec_events(data)
    assert used == path
    # CO-RE read the same fields at the same offsets: the events agree
    assert [e["exit_event"] for e in first] == [e["exit_event"] for e in second] == [False, True]
    assert first[0]["filename"] != second[0]["filename"]  # two executables, both decoded
    assert second[0]["ppid"] == os.getpid()


def test_a_damaged_cache_file_is_replaced_and_the_load_still_works(cache_home: Path) -> None:
    package = open_package((UPSTREAM / "bootstrap.json").read_bytes())
    path = corebtf.cache_path(package.object)
    assert path is not None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    Path(path).write_bytes(b"\x9f\xeb\x01\x00 not really BTF")
    os.chmod(path, 0o600)
    with LoadedObject(package, {"min_duration_ns": 0}, attach=False) as loaded:
        assert loaded.core_btf is None  # went again with the kernel's own BTF
    assert Path(path).read_bytes()[:2] == b"\x9f\xeb" and os.path.getsize(path) > 24
    with LoadedObject(package, {"min_duration_ns": 0}, attach=False) as loaded:
        assert loaded.core_btf == path
