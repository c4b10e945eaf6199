"""Finding tools, the vmlinux.h cache, and the small helpers of the build."""

from __future__ import annotations

import hashlib
import os

import pytest

from pyeunomia.compiler import toolchain
from pyeunomia.compiler.build import absolute_paths, include_dirs_in, package_name
from pyeunomia.compiler.clangrun import parse_depfile
from pyeunomia.errors import CompileError, ToolMissingError, UsageError
from tests.hostile import fifo, returns_promptly


def test_arch_names(monkeypatch):
    assert toolchain.target_arch("x86_64") == "x86"
    assert toolchain.target_arch("aarch64") == "arm64"
    assert toolchain.target_arch("arm64") == "arm64"
    assert toolchain.target_arch("riscv") == "riscv"
    with pytest.raises(UsageError, match="unknown architecture 'vax'"):
        toolchain.target_arch("vax")
    monkeypatch.setattr(toolchain.platform, "machine", lambda: "pdp11")
    with pytest.raises(CompileError, match="pass --arch"):
        toolchain.target_arch()


def test_libbpf_headers(monkeypatch, tmp_path):
    monkeypatch.setattr(toolchain, "SYSTEM_INCLUDE_DIRS", (str(tmp_path / "none"),))
    with pytest.raises(ToolMissingError, match="libbpf-dev"):
        toolchain.check_libbpf_headers([])
    (tmp_path / "inc" / "bpf").mkdir(parents=True)
    (tmp_path / "inc" / "bpf" / "bpf_helpers.h").write_text("")
    toolchain.check_libbpf_headers([str(tmp_path / "inc")])


def test_vmlinux_override_header_is_cached_by_content(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    given = tmp_path / "my-vmlinux.h"
    given.write_text("#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\ntypedef int s32;\n#endif\n")
    header = toolchain.vmlinux_header(str(given))
    assert header.name == "vmlinux.h"
    assert header.read_text() == given.read_text()
    assert str(header).startswith(str(tmp_path / "cache" / "pyeunomia" / "vmlinux"))
    assert toolchain.vmlinux_header(str(given)) == header
    with pytest.raises(UsageError, match="cannot read"):
        toolchain.vmlinux_header(str(tmp_path / "missing.h"))


def test_vmlinux_from_a_btf_file_uses_bpftool(monkeypatch, tmp_path, tool, kernel):
    tool("bpftool")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    header = toolchain.vmlinux_header(str(toolchain.KERNEL_BTF))
    assert b"struct task_struct {" in header.read_bytes()
    # the same BTF as the running kernel's: the same cache entry, keyed by all of its bytes
    assert toolchain.vmlinux_header() == header
    digest = hashlib.sha256(toolchain.KERNEL_BTF.read_bytes()).hexdigest()
    version = toolchain.bpftool_version(toolchain.find_bpftool())
    assert version  # keyed by the bpftool's version too (tests/compiler/test_private.py)
    assert header.parent.name == hashlib.sha256(f"{digest}\0bpftool {version}".encode()).hexdigest()[:24]


def test_vmlinux_fifo_is_refused_without_blocking(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = fifo(tmp_path / "vmlinux.h")
    err = returns_promptly(lambda: toolchain.vmlinux_header(str(path)), [path])
    assert isinstance(err, UsageError)
    assert str(err) == (f"--vmlinux {path}: not a regular file (a FIFO): pass a vmlinux.h, or the kernel's BTF "
                        "or ELF image")


def test_vmlinux_device_is_refused_unread(monkeypatch, tmp_path):
    """/dev/zero once grew ecc to 23.7 GB."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(UsageError, match=r"^--vmlinux /dev/zero: not a regular file \(a character device\): "):
        toolchain.vmlinux_header("/dev/zero")


@pytest.mark.parametrize(("magic", "size", "what"), [
    (b"/* vmlinux.h */", (64 << 20) + 1, "a vmlinux.h over 64 MiB"),
    (b"\x9f\xeb\x01\x00", (64 << 20) + 1, "a BTF file over 64 MiB"),
    (b"\x7fELF", (2 << 30) + 1, "an ELF image over 2 GiB"),
    (b"\x7fELF", 1 << 40, "an ELF image over 2 GiB"),
])
def test_vmlinux_over_its_cap_is_refused_unread(monkeypatch, tmp_path, magic, size, what):
    """Sparse files: refused by their size alone, in no time and no memory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "vmlinux"
    with path.open("wb") as f:
        f.write(magic)
        f.truncate(size)
    err = returns_promptly(lambda: toolchain.vmlinux_header(str(path)), [], seconds=2)
    assert isinstance(err, UsageError)
    assert str(err).startswith(f"--vmlinux {path}: {what}")
    assert not (tmp_path / "cache").exists()


def test_unwritable_cache_is_a_clear_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    given = tmp_path / "v.h"
    given.write_text("int x;\n")
    with pytest.raises(CompileError, match="XDG_CACHE_HOME"):
        toolchain.vmlinux_header(str(given))


def test_relative_include_flags_become_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    flags = absolute_paths(["-Iinc", "-I", "other", "-DX=1", "-include", "pre.h", "-isystem/abs", "-Wall",
                            "-include-pch", "v.pch"])
    assert flags == [f"-I{tmp_path}/inc", "-I", f"{tmp_path}/other", "-DX=1", "-include", f"{tmp_path}/pre.h",
                     "-isystem/abs", "-Wall", "-include-pch", f"{tmp_path}/v.pch"]


def test_include_dirs_in_cflags():
    assert include_dirs_in(["-I/a", "-I", "/b", "-isystem/c", "-idirafter", "/d", "-DI=1", "-include", "x.h"]) == [
        "/a", "/b", "/c", "/d"]


def test_package_names():
    assert package_name("dir/opensnoop.bpf.c") == "opensnoop"
    assert package_name("plain.c") == "plain"
    assert package_name("my-tool.bpf.c") == "my_tool"


def test_depfile():
    text = "prog.o: /src/prog.bpf.c /cache/vmlinux.h \\\n  /usr/include/bpf/bpf_helpers.h /my\\ dir/x.h\n"
    assert parse_depfile(text) == ["/src/prog.bpf.c", "/cache/vmlinux.h", "/usr/include/bpf/bpf_helpers.h",
                                   "/my dir/x.h"]


def test_headers_outside_the_cache_are_copied_in_by_content(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for place in ("a", "b"):
        write_to = tmp_path / place / "vmlinux.h"
        write_to.parent.mkdir()
        write_to.write_text("int same;\n")
    first = toolchain.cached_header(tmp_path / "a" / "vmlinux.h")
    assert first == toolchain.cached_header(tmp_path / "b" / "vmlinux.h")  # one copy, one PCH
    assert first.is_relative_to(tmp_path / "cache") and toolchain.cached_header(first) == first


def test_old_precompiled_headers_are_pruned(tmp_path):
    for i in range(9):
        pch = tmp_path / f"vmlinux-{i}.pch"
        pch.write_bytes(b"")
        os.utime(pch, (i, i))
    toolchain._prune(tmp_path, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vmlinux-6.pch", "vmlinux-7.pch", "vmlinux-8.pch"]
