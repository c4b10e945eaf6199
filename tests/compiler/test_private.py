"""Finding make toolchain's prefix, and vmlinux.h cached per bpftool version."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from pyeunomia.compiler import private, toolchain
from pyeunomia.errors import UsageError
from tests.conftest import require

VERSION_H = "#define LIBBPF_MAJOR_VERSION {0}\n#define LIBBPF_MINOR_VERSION {1}\n"


def fake_prefix(root: Path, version: tuple[int, int] = (1, 4), bpftool: bool = True) -> Path:
    bpf = root / "usr" / "include" / "bpf"
    bpf.mkdir(parents=True)
    (bpf / "bpf_helpers.h").write_text("")
    (bpf / "libbpf_version.h").write_text(VERSION_H.format(*version))
    if bpftool:
        fake_bpftool(root / "usr" / "sbin" / "bpftool", "bpftool v7.5.0")
    return root


def fake_bpftool(path: Path, version_line: str) -> Path:
    """A bpftool that states `version_line` and dumps a header naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nif [ "$1" = version ]; then echo "{version_line}"; exit 0; fi\n'
                    f'echo "/* {version_line} */"\n')
    path.chmod(0o755)
    return path


def test_the_environment_names_a_prefix_or_the_system(monkeypatch, tmp_path):
    root = fake_prefix(tmp_path / "tc")
    monkeypatch.setenv(private.ENV, str(root))
    found = private.find_prefix()
    assert found is not None
    assert found.include == str(root / "usr" / "include")
    assert found.bpftool == str(root / "usr" / "sbin" / "bpftool")
    assert found.libbpf == (1, 4)
    monkeypatch.setenv(private.ENV, "system")
    assert private.find_prefix() is None
    monkeypatch.setenv(private.ENV, str(tmp_path / "nothing"))
    with pytest.raises(UsageError, match=r"^\$PYEUNOMIA_TOOLCHAIN=.*/nothing: no libbpf headers in .*: "
                                         r"run make toolchain, or set it to 'system'"):
        private.find_prefix()


def test_the_venv_link_is_found_and_resolved(monkeypatch, tmp_path):
    monkeypatch.delenv(private.ENV, raising=False)
    venv = tmp_path / "venv"
    monkeypatch.setattr(sys, "prefix", str(venv))
    assert private.find_prefix() is None  # no link: the system's tools
    real = fake_prefix(tmp_path / "cache" / "libbpf-1.4.6_bpftool-7.5.0", bpftool=False)
    link = venv.joinpath(*private.LINK)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    found = private.find_prefix()
    assert found is not None and found.root == str(real)  # the real path: the same whichever venv links it
    assert found.bpftool is None
    tools = toolchain.Toolchain("clang", "llvm-strip", found)
    assert tools.include_flags == ["-isystem", str(real / "usr" / "include")]
    assert toolchain.Toolchain("clang", "llvm-strip").include_flags == []


def test_headers_version(tmp_path):
    assert private.headers_version(str(tmp_path)) is None
    fake_prefix(tmp_path / "p", (1, 1), bpftool=False)
    assert private.headers_version(str(tmp_path / "p" / "usr" / "include")) == (1, 1)
    if os.path.isfile("/usr/include/bpf/libbpf_version.h"):
        assert private.headers_version("/usr/include") is not None


def test_bpftool_versions_both_spellings(tmp_path):
    assert toolchain.bpftool_version(str(fake_bpftool(tmp_path / "a", "bpftool v7.5.0"))) == "7.5.0"
    # bpftool 7.1 names itself by its argv[0]
    assert toolchain.bpftool_version(str(fake_bpftool(tmp_path / "b", "/usr/sbin/bpftool v7.1.0"))) == "7.1.0"
    assert toolchain.bpftool_version(str(fake_bpftool(tmp_path / "c", "something else"))) == ""
    assert toolchain.bpftool_version(str(tmp_path / "missing")) == ""


def test_vmlinux_h_is_cached_per_bpftool_version(monkeypatch, tmp_path):
    """A header bpftool 7.1 made lacks the kfunc prototypes 7.5 writes: never reuse it for 7.5."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYEUNOMIA_BPFTOOL", raising=False)
    btf = tmp_path / "vmlinux.btf"
    btf.write_bytes(b"\x9f\xeb\x01\x00" + bytes(60))
    old = fake_bpftool(tmp_path / "old" / "bpftool", "/usr/sbin/bpftool v7.1.0")
    new = fake_bpftool(tmp_path / "new" / "bpftool", "bpftool v7.5.0")
    made_by_old = toolchain.vmlinux_header(str(btf), str(old))
    made_by_new = toolchain.vmlinux_header(str(btf), str(new))
    assert made_by_old != made_by_new
    assert made_by_old.read_text() == "/* /usr/sbin/bpftool v7.1.0 */\n"
    assert made_by_new.read_text() == "/* bpftool v7.5.0 */\n"
    digest = hashlib.sha256(btf.read_bytes()).hexdigest()
    assert made_by_new.parent.name == hashlib.sha256(f"{digest}\0bpftool 7.5.0".encode()).hexdigest()[:24]
    assert toolchain.vmlinux_header(str(btf), str(new)) == made_by_new  # cached
    # PYEUNOMIA_BPFTOOL still comes first
    monkeypatch.setenv("PYEUNOMIA_BPFTOOL", str(old))
    assert toolchain.vmlinux_header(str(btf), str(new)) == made_by_old


def test_the_installed_toolchain_is_current():
    """What `make test` installed (make toolchain): libbpf headers 1.4+, and a bpftool 7.5+ that runs here."""
    found = private.find_prefix()
    require(found is not None, "make toolchain has not installed the private toolchain")
    assert found is not None
    assert found.libbpf is not None and found.libbpf >= (1, 4)
    assert found.bpftool is not None
    version = toolchain.bpftool_version(found.bpftool)
    assert tuple(int(p) for p in version.split(".")[:2]) >= (7, 5), version
