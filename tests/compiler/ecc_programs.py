"""The C programs the ecc tests compile, and building them with the real ecc."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import require
from tests.e2e.helpers import run

PROGRAMS = Path(__file__).resolve().parents[1] / "e2e" / "programs"
NAMES = ("opensnoop", "allglobals", "nested", "hist", "maptally")


def sources(name: str) -> tuple[Path, Path]:
    """(NAME.bpf.c, its export header) of a test program."""
    directory = PROGRAMS / name
    header = directory / f"{name}.bpf.h"
    return directory / f"{name}.bpf.c", header if header.exists() else directory / f"{name}.h"


@pytest.fixture
def compiler(tool) -> None:
    """Mark a test that runs ecc: it needs the build tools and libbpf's headers."""
    for name in ("clang", "llvm-strip", "bpftool"):
        tool(name)
    require(os.path.exists("/usr/include/bpf/bpf_helpers.h"), "libbpf-dev is not installed (make test installs it)")


@pytest.fixture
def current_toolchain(compiler) -> None:
    """Mark a test whose programs need make toolchain's libbpf headers 1.4+ and bpftool 7.5+."""
    from pyeunomia.compiler.private import find_prefix

    prefix = find_prefix()
    require(prefix is not None and prefix.bpftool is not None and (prefix.libbpf or (0, 0)) >= (1, 4),
            "the private toolchain is not installed (make test installs it: make toolchain)")


@functools.cache
def built(name: str) -> Path:
    """OUTDIR of `ecc NAME.bpf.c HEADER -o OUTDIR`, built once per test session."""
    out = Path(tempfile.mkdtemp(prefix=f"pyeu-ecc-{name}-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    source, header = sources(name)
    done = run("ecc", str(source), str(header), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out


def copy_sources(name: str, into: Path) -> tuple[Path, Path]:
    into.mkdir(parents=True, exist_ok=True)
    source, header = sources(name)
    shutil.copy(source, into)
    shutil.copy(header, into)
    return into / source.name, into / header.name
