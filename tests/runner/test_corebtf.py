"""The minimal-BTF cache: keys and trust, without the kernel."""

from __future__ import annotations

import os
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
