"""ecc --btfgen without the kernel: a btfhub-style archive in, the object's
minimal BTF for each of its kernels out, in package.json and in upstream's
tar; reproducible; bad archives refused in one line."""

from __future__ import annotations

import io
import json
import lzma
import shutil
import tarfile
from pathlib import Path

import pytest

from pyeunomia.compiler import btfgen
from pyeunomia.errors import UsageError
from pyeunomia.format.btfarchive import BtfArchive
from pyeunomia.source import open_package
from tests.conftest import FIXTURES
from tests.e2e.helpers import run

from .ecc_programs import compiler, sources  # noqa: F401 - compiler is a fixture

pytestmark = pytest.mark.usefixtures("compiler")

ARCHIVE = FIXTURES / "btfhub-min"  # execmin's minimal BTF for the kernel matrix's three kernels
KERNELS = ["debian/11/x86_64/5.10.0-32-cloud-amd64", "debian/12/x86_64/6.1.0-50-cloud-amd64",
           "debian/12/x86_64/6.12.95+deb12-cloud-amd64"]


def ecc_btfgen(out: Path, archive: Path = ARCHIVE, *extra: str) -> str:
    source, header = sources("execmin")
    done = run("ecc", str(source), str(header), "-o", str(out), "--btfgen", "--btfhub-archive", str(archive), *extra)
    assert done.returncode == 0, done.stderr
    return done.stderr


def fixture_btf(name: str) -> bytes:
    plain = ARCHIVE / f"{name}.btf"
    if plain.exists():
        return plain.read_bytes()
    with tarfile.open(ARCHIVE / f"{name}.btf.tar.xz") as tar:
        member = tar.extractfile(f"{name.rsplit('/', 1)[1]}.btf")
        assert member is not None
        return member.read()


def test_every_kernel_of_the_archive_goes_into_the_package(tmp_path: Path) -> None:
    said = ecc_btfgen(tmp_path)
    package = open_package(tmp_path / "package.json")
    archive = package.btf_archive
    assert archive is not None and archive.names() == KERNELS
    for name in KERNELS:  # cut from a minimal file, the minimal file comes back (.btf.tar.xz read as btfhub keeps it)
        assert archive.files[f"{name}.btf"] == fixture_btf(name)
    doc = json.loads((tmp_path / "package.json").read_text())
    assert doc["btf_archive_size"] > 0 and len(doc["btf_archive"]) < 1500  # 927 bytes of 309-byte files, xz'd
    assert "ecc: btfgen: minimal BTF for 3 kernels of" in said and "927 bytes from 0 MiB" in said


def test_upstreams_tar_is_written_beside_it(tmp_path: Path) -> None:
    ecc_btfgen(tmp_path)
    with tarfile.open(tmp_path / "execmin.tar") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
        assert names == ["btfhub-archive/" + k + ".btf" for k in KERNELS] + ["execmin.bpf.o", "package.json"]
        member = tar.extractfile("execmin.bpf.o")
        assert member is not None and member.read() == (tmp_path / "execmin.bpf.o").read_bytes()
        inner = tar.extractfile("package.json")
        assert inner is not None and "btf_archive" not in json.loads(inner.read())  # upstream's tar: BTF beside it
    from_tar = open_package(tmp_path / "execmin.tar").btf_archive
    assert from_tar is not None and from_tar.files == open_package(tmp_path / "package.json").btf_archive.files  # type: ignore[union-attr]


def test_builds_are_byte_identical(tmp_path: Path) -> None:
    ecc_btfgen(tmp_path / "a")
    ecc_btfgen(tmp_path / "b")
    for name in ("package.json", "execmin.tar"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_other_architectures_and_broken_kernels_are_left_out_and_said(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(ARCHIVE, archive)
    arm = archive / "ubuntu" / "22.04" / "arm64"
    arm.mkdir(parents=True)
    shutil.copy(ARCHIVE / (KERNELS[0] + ".btf"), arm / "5.15.0-1-generic.btf")
    broken = archive / "debian" / "12" / "x86_64" / "6.1.0-99-cloud-amd64.btf"
    broken.write_bytes(b"")
    (archive / "debian" / "12" / "x86_64" / "README").write_text("not a kernel")
    said = ecc_btfgen(tmp_path / "out", archive)
    assert "minimal BTF for 3 kernels" in said
    assert "1 of other architectures left out" in said
    assert "1 failed (debian/12/x86_64/6.1.0-99-cloud-amd64: it is empty)" in said
    found = open_package(tmp_path / "out" / "package.json").btf_archive
    assert found is not None and found.names() == KERNELS


def test_kernels_of_the_target_architecture_only() -> None:
    assert btfgen.arch_dirs("x86") >= {"x86_64", "amd64"}
    assert btfgen.arch_dirs("arm64") == {"aarch64", "arm64"}
    kernels, others = btfgen.find_kernels(str(ARCHIVE), "arm64")
    assert (kernels, others) == ([], 3)


@pytest.mark.parametrize(("args", "expect"), [
    (["--btfhub-archive", "/nonexistent"], "--btfhub-archive is for --btfgen: add -b"),
    (["-b", "--btfhub-archive", "/nonexistent"], "--btfhub-archive /nonexistent: no such directory"),
    (["-b", "--btfhub-archive", str(ARCHIVE), "--arch", "arm64"], "no kernel BTF for arm64 (3 of other architectures)"),
])
def test_a_bad_archive_is_one_line(tmp_path: Path, args: list[str], expect: str) -> None:
    source, header = sources("execmin")
    done = run("ecc", str(source), str(header), "-o", str(tmp_path), *args)
    assert done.returncode != 0
    assert expect in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_a_name_btfhub_cannot_hold_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "debian" / "12" / "x86_64"
    bad.mkdir(parents=True)
    (bad / "6.1 0.btf").write_bytes(b"")
    with pytest.raises(UsageError, match="is not a btfhub archive name"):
        btfgen.find_kernels(str(tmp_path), "x86")


def test_a_btf_tar_xz_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(btfgen, "MAX_KERNEL_BTF", 1000)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as tar:
        info = tarfile.TarInfo("r.btf")
        info.size = 1 << 20
        tar.addfile(info, io.BytesIO(bytes(1 << 20)))
    kernel = btfgen.KernelFile("debian", "12", "x86_64", "r", str(tmp_path / "r.btf.tar.xz"))
    Path(kernel.path).write_bytes(lzma.compress(buf.getvalue()))
    with pytest.raises(btfgen.ToolError, match="inflates past"):
        btfgen.kernel_btf(kernel)


def test_a_result_says_what_it_made() -> None:
    result = btfgen.BtfgenResult(BtfArchive({"d/1/x86_64/r.btf": b"x" * 300}), 1, 2, [("d/1/x86_64/s", "why")],
                                 5 << 20, 0.5)
    assert result.summary("arch", 400) == ("minimal BTF for 1 kernel of arch: 300 bytes from 5 MiB of kernel BTF, "
                                           "400 bytes in package.json (0.50 s); 2 of other architectures left out; "
                                           "1 failed (d/1/x86_64/s: why)")
