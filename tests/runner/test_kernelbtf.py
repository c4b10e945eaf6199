"""Choosing the BTF a load relocates against, without the kernel: --btf
files read by the bounded rules, the kernel's own BTF probed, the package's
archive matched by os-release and uname, and one line when nothing fits."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pyeunomia.errors import UnsupportedFeatureError, UsageError
from pyeunomia.format.btfarchive import BtfArchive, KernelId
from pyeunomia.format.package import Package
from pyeunomia.runner import kernelbtf
from pyeunomia.source import open_package

from ..btfbuilder import BtfBuilder
from ..conftest import UPSTREAM


def btf() -> bytes:
    b = BtfBuilder()
    b.struct("task_struct", 8, [("pid", b.int("int", 4, 1), 0)])
    return b.build()


BTF = btf()


def test_a_btf_file_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "vmlinux.btf"
    path.write_bytes(BTF)
    got = kernelbtf.read_btf_file(path)
    assert got == kernelbtf.BtfFile(f"--btf {path}", BTF)


@pytest.mark.parametrize(("content", "expect"), [
    (b"", "it is empty: pass a kernel's BTF file"),
    (b"\x7fELF" + bytes(60), "an ELF image, not raw BTF: extract its BTF with 'objcopy --dump-section .BTF=FILE"),
    (b"hello, this is not BTF, but long enough", "it is not BTF (no BTF magic)"),
    (BTF[:-3], "its BTF header points outside the file"),
])
def test_a_bad_btf_file_is_one_line(tmp_path: Path, content: bytes, expect: str) -> None:
    path = tmp_path / "bad\x1b[31m.btf"  # and its name is escaped
    path.write_bytes(content)
    with pytest.raises(UsageError) as e:
        kernelbtf.read_btf_file(path)
    assert expect in str(e.value) and "\\x1b[31m" in str(e.value) and "\n" not in str(e.value)


def test_a_fifo_a_directory_and_a_device_are_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def read() -> None:
        try:
            kernelbtf.read_btf_file(fifo)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            result.append(e)
    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading a FIFO waited for a writer"
    assert "not a regular file (a FIFO)" in str(result[0])
    with pytest.raises(UsageError, match="cannot read it"):
        kernelbtf.read_btf_file(tmp_path)
    with pytest.raises(UsageError, match="a character device"):
        kernelbtf.read_btf_file("/dev/zero")


def test_a_file_over_the_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernelbtf, "MAX_BTF_FILE", len(BTF) - 1)
    path = tmp_path / "big.btf"
    path.write_bytes(BTF)
    with pytest.raises(UsageError, match="more than any kernel's BTF"):
        kernelbtf.read_btf_file(path)


def test_os_release_is_read_as_a_shell_would(tmp_path: Path) -> None:
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n# a comment\n' \
           "NAME='Ubuntu'\nBROKEN LINE\nVERSION=\"say \\\"hi\\\"\"\n"
    assert kernelbtf.parse_os_release(text) == {"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "ID": "debian",
                                                "VERSION_ID": "12", "NAME": "Ubuntu", "VERSION": 'say "hi"'}
    first, second = tmp_path / "etc-os-release", tmp_path / "usr-lib-os-release"
    second.write_text("ID=fedora\nVERSION_ID=40\n")
    assert kernelbtf.os_release((str(first), str(second)))["ID"] == "fedora"  # os-release(5): the fallback
    assert kernelbtf.os_release((str(tmp_path / "none"),)) == {}


def test_this_kernel_names_the_running_one() -> None:
    here = kernelbtf.this_kernel()
    assert (here.machine, here.release) == (os.uname().machine, os.uname().release)
    assert here.distro == kernelbtf.os_release().get("ID", "")


@pytest.fixture
def kernel_btf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the loader looks for the kernel's own BTF, in a test's folder."""
    path = tmp_path / "vmlinux"
    monkeypatch.setattr(kernelbtf, "KERNEL_BTF", str(path))
    return path


def test_the_kernels_own_btf_is_probed(kernel_btf: Path) -> None:
    assert kernelbtf.kernel_btf_problem() == "is missing"
    kernel_btf.write_bytes(b"")
    assert kernelbtf.kernel_btf_problem() == "is unusable (it is empty)"
    kernel_btf.write_bytes(b"\0" * 100)
    assert kernelbtf.kernel_btf_problem() == "is unusable (it is not BTF (no BTF magic))"
    kernel_btf.write_bytes(BTF)
    assert kernelbtf.kernel_btf_problem() is None


def _with_archive(files: dict[str, bytes]) -> Package:
    base = open_package((UPSTREAM / "bootstrap.json").read_bytes())
    return Package(base.object, base.meta, "test.json", BtfArchive(files))


def test_the_choice_in_order(kernel_btf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = KernelId("debian", "12", "x86_64", "6.1.0-50-cloud-amd64")
    monkeypatch.setattr(kernelbtf, "this_kernel", lambda: here)
    mine = kernelbtf.BtfFile("--btf x", BTF)
    package = _with_archive({"debian/12/x86_64/6.1.0-50-cloud-amd64.btf": BTF})
    kernel_btf.write_bytes(BTF)
    assert kernelbtf.choose(package, mine).kind == "file"  # --btf first, whatever the kernel has
    assert kernelbtf.choose(package, None) == kernelbtf.BtfSource("kernel", str(kernel_btf))
    kernel_btf.write_bytes(b"")  # unusable: the package's own
    found = kernelbtf.choose(package, None)
    assert found == kernelbtf.BtfSource("package", "the package's BTF for debian/12/x86_64/6.1.0-50-cloud-amd64", BTF)


def test_no_btf_anywhere_is_one_line_that_says_what_to_do(kernel_btf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernelbtf, "this_kernel", lambda: KernelId("debian", "12", "x86_64", "6.1.0-51\x1b"))
    plain = open_package((UPSTREAM / "bootstrap.json").read_bytes())
    with pytest.raises(UnsupportedFeatureError) as e:
        kernelbtf.choose(plain, None)
    assert str(e.value) == (f"this kernel does not support BTF: {kernel_btf} is missing: pass this kernel's BTF "
                            "with --btf PATH, build the package with ecc --btfgen for this kernel, or use a kernel "
                            "built with CONFIG_DEBUG_INFO_BTF=y")
    other = _with_archive({"debian/12/x86_64/6.1.0-50-cloud-amd64.btf": BTF,
                           "debian/11/x86_64/5.10.0-32-cloud-amd64.btf": BTF})
    with pytest.raises(UnsupportedFeatureError) as e:
        kernelbtf.choose(other, None)
    text = str(e.value)
    assert "client has no BTF for kernel 6.1.0-51\\x1b (debian/12/x86_64): it carries BTF for 2 other kernels" in text
    assert "--btf PATH" in text and "\n" not in text


def test_a_memory_file_is_a_path_while_it_lasts() -> None:
    with kernelbtf.memory_file(BTF) as path:
        assert path.startswith("/proc/self/fd/")
        assert Path(path).read_bytes() == BTF
    with pytest.raises(OSError):
        os.fstat(int(path.rsplit("/", 1)[1]))  # closed: the memory is gone with it
