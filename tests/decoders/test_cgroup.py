"""cgroup ids and paths, against a directory tree shaped like cgroup v2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyeunomia.decoders import DECODERS
from pyeunomia.decoders.cgroup import CgroupNames, cgroup2_root, cgroup_id_and_level


def tree(tmp_path):
    for rel in ("a", "a/b", "c"):
        (tmp_path / rel).mkdir()
        (tmp_path / rel / "cgroup.procs").write_text("")
    (tmp_path / "cgroup.procs").write_text("")
    return tmp_path


def test_id_and_level(tmp_path):
    root = tree(tmp_path)
    assert cgroup_id_and_level("/", str(root)) == (root.stat().st_ino, 0)
    assert cgroup_id_and_level("/a/b", str(root)) == ((root / "a" / "b").stat().st_ino, 2)
    assert cgroup_id_and_level(str(root / "c"), str(root)) == ((root / "c").stat().st_ino, 1)
    (root / "plain").mkdir()
    with pytest.raises(NotADirectoryError):
        cgroup_id_and_level("/plain", str(root))
    with pytest.raises(FileNotFoundError):
        cgroup_id_and_level("/missing", str(root))


def test_names_rescan_for_new_groups_but_not_for_every_miss(tmp_path, monkeypatch):
    root = tree(tmp_path)
    names = CgroupNames(str(root))
    assert names.name((root / "a" / "b").stat().st_ino) == "/a/b"
    (root / "new").mkdir()
    new_id = (root / "new").stat().st_ino
    assert names.name(new_id) == str(new_id)  # within a second of the last scan: no rescan
    names._scanned_at -= CgroupNames.RESCAN_AFTER_S
    assert names.name(new_id) == "/new"
    gone = 1 << 40
    names._scanned_at -= CgroupNames.RESCAN_AFTER_S
    assert names.name(gone) == str(gone)


def test_cgroup2_root_from_mounts(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")
    assert cgroup2_root(str(mounts)) == "/sys/fs/cgroup/unified"
    mounts.write_text("proc /proc proc rw 0 0\n")
    assert cgroup2_root(str(mounts)) is None
    assert cgroup2_root(os.devnull) is None


def test_cgroup_ids_become_paths_below_the_root(tmp_path: Path):
    (tmp_path / "system.slice" / "ssh.service").mkdir(parents=True)
    decode = DECODERS["cgroup"].make({"root": str(tmp_path)})
    assert decode(os.stat(tmp_path / "system.slice" / "ssh.service").st_ino) == "/system.slice/ssh.service"
    assert decode(os.stat(tmp_path).st_ino) == "/"
    assert decode(1) == "1"  # gone, or never there: its number
    with pytest.raises(ValueError, match="root"):
        DECODERS["cgroup"].make({"root": 5})
