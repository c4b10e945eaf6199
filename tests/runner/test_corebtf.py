"""The minimal-BTF cache: keys and trust, without the kernel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyeunomia.runner import corebtf


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(corebtf.DISABLE_ENV, raising=False)
    return tmp_path


def test_a_file_per_object_under_a_directory_per_kernel(cache_home: Path) -> None:
    a, b = corebtf.cache_path(b"object a"), corebtf.cache_path(b"object b")
    assert a is not None and b is not None
    assert a != b
    assert os.path.dirname(a) == os.path.dirname(b)
    assert a.startswith(str(cache_home / "pyeunomia" / "core-btf") + "/")
    assert corebtf.cache_path(b"object a") == a


def test_switched_off_by_the_environment(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(corebtf.DISABLE_ENV, "1")
    assert corebtf.cache_path(b"object") is None


def _cached_file(cache_home: Path) -> str:
    path = corebtf.cache_path(b"object")
    assert path is not None
    os.makedirs(os.path.dirname(path), mode=0o700)
    Path(path).write_bytes(b"btf")
    os.chmod(path, 0o600)
    return path


def test_trusted_only_when_owned_and_writable_by_us_alone(cache_home: Path) -> None:
    path = _cached_file(cache_home)
    assert corebtf.trusted(path)
    os.chmod(path, 0o620)
    assert not corebtf.trusted(path)
    os.chmod(path, 0o600)
    os.chmod(os.path.dirname(path), 0o777)
    assert not corebtf.trusted(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_file_someone_else_owns_is_not_trusted(cache_home: Path) -> None:
    path = _cached_file(cache_home)
    os.chown(path, 65534, 65534)
    assert not corebtf.trusted(path)


def test_a_missing_file_is_not_trusted(cache_home: Path) -> None:
    path = corebtf.cache_path(b"never written")
    assert path is not None and not corebtf.trusted(path)


def test_prune_keeps_the_newest_files_and_kernels(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corebtf, "KEEP_PER_KERNEL", 3)
    monkeypatch.setattr(corebtf, "KEEP_KERNELS", 3)
    root = cache_home / "pyeunomia" / "core-btf"
    kernels = [root / f"kernel{k}" for k in range(4)]
    current = kernels[3]
    for i in range(5):
        f = current / f"obj{i}.btf"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"btf")
        os.utime(f, (2000 + i, 2000 + i))
    for age, kernel in enumerate(reversed(kernels)):  # kernel3 oldest ... kernel0 newest
        kernel.mkdir(parents=True, exist_ok=True)
        os.utime(kernel, (1000 + age, 1000 + age))
    # kernel3 is the running kernel's directory: kept although it is the oldest
    corebtf.prune(str(current))
    assert sorted(p.name for p in current.iterdir()) == ["obj2.btf", "obj3.btf", "obj4.btf"]
    assert sorted(p.name for p in root.iterdir()) == ["kernel0", "kernel1", "kernel3"]


def test_a_directory_above_that_others_can_write_is_not_trusted(cache_home: Path) -> None:
    path = _cached_file(cache_home)
    above = cache_home / "pyeunomia"
    os.chmod(above, 0o777)
    try:
        assert corebtf.trusted(path) is None
        os.chmod(above, 0o1777)  # sticky, like /tmp: others cannot replace what is ours
        assert corebtf.trusted(path) == os.path.realpath(path)
    finally:
        os.chmod(above, 0o700)


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyeunomia.cache import cache_root

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert cache_root() == os.path.join(os.path.expanduser("~"), ".cache", "pyeunomia")


def test_nothing_is_written_where_others_can_write(cache_home: Path) -> None:
    from pyeunomia.source import open_package

    obj = open_package("opensnoop").object
    path = corebtf.cache_path(obj)
    assert path is not None
    os.chmod(cache_home, 0o777)
    try:
        assert not corebtf.generate(obj, path)
    finally:
        os.chmod(cache_home, 0o700)
    assert not os.path.exists(path)
    assert corebtf.generate(obj, path)  # and once the directory is ours alone, it is
    assert corebtf.trusted(path)


KILLED_WRITER = """
import os, signal, sys
from pyeunomia import cache
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # killed between the write and the rename
cache.write_atomically(sys.argv[1], b"half of a cache file")
"""


def test_what_a_killed_writer_left_is_swept_by_the_next_run(cache_home: Path) -> None:
    from pyeunomia.source import open_package

    obj = open_package("opensnoop").object
    path = corebtf.cache_path(obj)
    assert path is not None
    kernel_dir = Path(path).parent
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(kernel_dir / "other.btf")])
    assert killed.returncode == -signal.SIGKILL
    [left] = [p for p in kernel_dir.iterdir() if p.name != "other.btf"]  # the killed run's temporary file
    mine = kernel_dir / f".tmp-{os.getpid()}-abcdefgh"  # a live writer's: kept
    mine.write_bytes(b"being written")
    stale = kernel_dir / f".tmp-{os.getpid()}-stale"  # the pid is alive but reused: old is old
    stale.write_bytes(b"x")
    os.utime(stale, (1000, 1000))
    assert corebtf.generate(obj, path)
    assert sorted(p.name for p in kernel_dir.iterdir()) == sorted([os.path.basename(path), mine.name])
    assert not left.exists()
