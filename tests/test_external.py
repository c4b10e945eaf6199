"""Finding the outside programs: clang and llvm-strip for ecc, bpftool for
ecc and the loader's BTF cache; a missing one names its Debian package."""

from __future__ import annotations

import shutil

import pytest

from pyeunomia import external
from pyeunomia.compiler import toolchain
from pyeunomia.errors import ToolMissingError


def test_missing_tools_name_their_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    with pytest.raises(ToolMissingError, match=r"clang not found: install it with 'apt-get install clang'"):
        toolchain.Toolchain.find()
    with pytest.raises(ToolMissingError, match="apt-get install bpftool"):
        external.find_bpftool()


def test_missing_llvm_strip_names_llvm(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda name, path=None: None if "strip" in name else real_which("sh"))
    with pytest.raises(ToolMissingError, match="llvm-strip not found: install it with 'apt-get install llvm'"):
        toolchain.Toolchain.find()


def test_tool_override_must_exist(monkeypatch):
    monkeypatch.setenv("PYEUNOMIA_BPFTOOL", "/no/such/bpftool")
    with pytest.raises(ToolMissingError, match=r"PYEUNOMIA_BPFTOOL.*apt-get install bpftool"):
        external.find_bpftool()
