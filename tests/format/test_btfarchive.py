"""Minimal kernel BTF carried by a package: our embedded form, upstream's tar,
picking the file for a kernel, and hostile archives. No kernel needed."""

from __future__ import annotations

import base64
import io
import json
import lzma
import tarfile

import pytest

from pyeunomia.errors import PackageError
from pyeunomia.format import btfarchive
from pyeunomia.format.btf import header_problem
from pyeunomia.format.btfarchive import BtfArchive, KernelId, kernel_path, pack, read_tar, unpack, upstream_tar
from pyeunomia.format.package import MAX_META, Package
from pyeunomia.source import open_package

from ..btfbuilder import BtfBuilder
from ..conftest import UPSTREAM


def btf(name: str = "task_struct", size: int = 64) -> bytes:
    b = BtfBuilder()
    i = b.int("int", 4, 1)
    b.struct(name, size, [("pid", i, 0)])
    return b.build()


A, B = btf(size=64), btf(size=72)
FILES = {"debian/11/x86_64/5.10.0-32-cloud-amd64.btf": A, "debian/12/x86_64/6.1.0-50-cloud-amd64.btf": B}


def test_packed_and_unpacked_again_reproducibly() -> None:
    text, size = pack(BtfArchive(FILES))
    assert (text, size) == pack(BtfArchive(dict(reversed(FILES.items()))))  # same bytes whatever the order
    assert unpack(text, size, "x").files == FILES
    tar = lzma.decompress(base64.b64decode(text))
    names = tarfile.open(fileobj=io.BytesIO(tar)).getnames()
    assert "btfhub-archive/debian/12/x86_64/6.1.0-50-cloud-amd64.btf" in names  # upstream's tree, inside


def test_the_exact_name_first_then_the_release_on_this_machine() -> None:
    archive = BtfArchive(FILES)
    exact = archive.match(KernelId("debian", "12", "x86_64", "6.1.0-50-cloud-amd64"))
    assert exact is not None and exact.exact and exact.data == B
    # Debian 12's userland booting Debian 11's kernel (the kernel matrix's 5.10 guest), or a container
    other = archive.match(KernelId("debian", "12", "x86_64", "5.10.0-32-cloud-amd64"))
    assert other is not None and not other.exact and other.path.startswith("debian/11/")
    assert archive.match(KernelId("", "", "x86_64", "5.10.0-32-cloud-amd64")) is not None  # no os-release
    assert archive.match(KernelId("debian", "12", "aarch64", "6.1.0-50-cloud-amd64")) is None
    assert archive.match(KernelId("debian", "12", "x86_64", "6.1.0-51-cloud-amd64")) is None


def test_arm64_as_btfhub_spells_it_and_as_uname_does() -> None:
    archive = BtfArchive({"ubuntu/22.04/arm64/5.15.0-1-generic.btf": A})
    found = archive.match(KernelId("ubuntu", "22.04", "aarch64", "5.15.0-1-generic"))
    assert found is not None and found.exact


def test_two_different_files_for_one_release_are_no_match() -> None:
    same = {"debian/12/x86_64/6.1.0-1.btf": A, "ubuntu/22.04/x86_64/6.1.0-1.btf": A}
    assert BtfArchive(same).match(KernelId("fedora", "40", "x86_64", "6.1.0-1")) is not None
    differ = {"debian/12/x86_64/6.1.0-1.btf": A, "ubuntu/22.04/x86_64/6.1.0-1.btf": B}
    archive = BtfArchive(differ)
    assert archive.match(KernelId("fedora", "40", "x86_64", "6.1.0-1")) is None
    assert len(archive.same_release(KernelId("fedora", "40", "x86_64", "6.1.0-1"))) == 2
    assert archive.match(KernelId("ubuntu", "22.04", "x86_64", "6.1.0-1")) is not None  # exact still wins


@pytest.mark.parametrize("parts", [("debian", "12", "x86_64", "../x"), ("debian", "..", "x86_64", "r"),
                                   ("de/bian", "12", "x86_64", "r"), ("debian", "12", "x86_64", "a\nb"),
                                   ("", "12", "x86_64", "r")])
def test_names_btfhub_cannot_hold_are_refused(parts: tuple[str, str, str, str]) -> None:
    with pytest.raises(PackageError, match="not a btfhub archive name"):
        kernel_path(*parts)


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def _special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(("entry", "expect"), [
    (("../package.json", b"{}"), "outside the package"),
    (("/etc/passwd", b"x"), "outside the package"),
    (("./btfhub-archive/../../x.btf", b"x"), "outside the package"),
    (_special("btfhub-archive/debian/12/x86_64/r.btf", tarfile.SYMTYPE, "/sys/kernel/btf/vmlinux"),
     "not a regular file"),
    (_special("btfhub-archive/debian/12/x86_64/r.btf", tarfile.LNKTYPE, "package.json"), "not a regular file"),
    (_special("dev", tarfile.CHRTYPE), "not a regular file"),
    (("btfhub-archive/debian/12/x86_64/r.btf", b"not BTF at all, but long enough"), "not BTF"),
    (("btfhub-archive/debian/12/x86_64/r.btf", A[:30]), "outside the file"),
])
def test_a_hostile_tar_is_refused_in_one_line(entry: tarfile.TarInfo | tuple[str, bytes], expect: str) -> None:
    with pytest.raises(PackageError, match=expect) as e:
        read_tar(_tar([entry]), "x.tar")
    assert "\n" not in str(e.value)


def test_other_files_in_a_tar_are_left_alone() -> None:
    data = _tar([("./package.json", b"{}"), ("./btfhub-archive/README.md", b"# hi"),
                 ("./btfhub-archive/debian/12/x86_64/r.btf.tar.xz", b"packed"), ("./client.bpf.o", b"\x7fELF"),
                 ("./btfhub-archive/debian/12/x86_64/6.1.0-50-cloud-amd64.btf", A)])
    package, archive = read_tar(data, "x.tar")
    assert package == b"{}"
    assert archive.files == {"debian/12/x86_64/6.1.0-50-cloud-amd64.btf": A}


def test_a_member_over_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(btfarchive, "MAX_MEMBER", 16)
    with pytest.raises(PackageError, match="is over 16 bytes"):
        read_tar(_tar([("btfhub-archive/debian/12/x86_64/r.btf", A)]), "x.tar")


@pytest.mark.parametrize(("text", "size", "expect"), [
    ("!!!", None, "not valid base64"),
    (base64.b64encode(b"plain bytes").decode(), None, "not xz data"),
    (pack(BtfArchive(FILES))[0], 1, "btf_archive_size says 1"),
    (base64.b64encode(lzma.compress(b"x" * 1000)[:-30]).decode(), None, "truncated"),
    (base64.b64encode(lzma.compress(_tar([("package.json", b"{}")]))).decode(), None, "carries kernel BTF only"),
])
def test_a_broken_embedded_archive_is_one_line(text: str, size: int | None, expect: str) -> None:
    with pytest.raises(PackageError, match=expect):
        unpack(text, size, "p.json")


def test_an_archive_inflating_past_its_cap_stops_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(btfarchive, "MAX_ARCHIVE", 4096)
    bomb = base64.b64encode(lzma.compress(bytes(1 << 20))).decode()  # 1 MiB of zeros, 200 bytes packed
    with pytest.raises(PackageError, match="inflates beyond 4 KiB"):
        unpack(bomb, None, "p.json")


def _package_doc(**extra: object) -> dict[str, object]:
    doc = json.loads((UPSTREAM / "bootstrap.json").read_text())
    doc.update(extra)
    return doc


def test_a_package_carries_it_and_inflates_it_only_when_asked() -> None:
    text, size = pack(BtfArchive(FILES))
    pkg = Package.from_json(json.dumps(_package_doc(btf_archive=text, btf_archive_size=size)))
    assert pkg.has_btf_archive
    assert pkg.btf_archive is not None and pkg.btf_archive.files == FILES
    again = json.loads(pkg.to_json())
    assert (again["btf_archive"], again["btf_archive_size"]) == (text, size)  # written back as it came
    broken = Package.from_json(json.dumps(_package_doc(btf_archive="AAAA")))
    assert broken.has_btf_archive  # read without inflating it: a kernel with BTF never pays for it
    with pytest.raises(PackageError, match="not xz data"):
        broken.btf_archive  # noqa: B018
    assert not Package.from_json((UPSTREAM / "bootstrap.json").read_bytes()).has_btf_archive


@pytest.mark.parametrize(("extra", "expect"), [
    ({"btf_archive": 5}, "btf_archive must be a base64 string"),
    ({"btf_archive": "AAAA", "btf_archive_size": True}, "btf_archive_size must be a whole number"),
    ({"btf_archive_size": 5}, "btf_archive_size without a btf_archive"),
])
def test_archive_fields_are_type_checked(extra: dict[str, object], expect: str) -> None:
    with pytest.raises(PackageError, match=expect):
        Package.from_json(json.dumps(_package_doc(**extra)))


def test_a_large_archive_does_not_count_as_metadata() -> None:
    """Thousands of kernels make megabytes of archive: like bpf_object, the
    string is one JSON value, not metadata under the 1 MiB cap."""
    text = base64.b64encode(b"\0" * (MAX_META + 1000)).decode()
    pkg = Package.from_json(json.dumps(_package_doc(btf_archive=text)))
    assert pkg.has_btf_archive
    with pytest.raises(PackageError, match="besides the bpf_object string"):
        Package.from_json(json.dumps(_package_doc(padding="x" * (MAX_META + 1000))))


def test_upstreams_tar_runs_as_a_package() -> None:
    plain = (UPSTREAM / "bootstrap.json").read_bytes()
    obj = open_package(plain).object
    data = upstream_tar(plain, "bootstrap.bpf.o", obj, BtfArchive(FILES))
    pkg = open_package(data)
    assert pkg.object == obj and pkg.meta.obj_name == "client_bpf"
    assert pkg.btf_archive is not None and pkg.btf_archive.files == FILES
    assert json.loads(pkg.to_json())["btf_archive_size"] > 0  # and it becomes our one-file form
    # as upstream's tar crate writes it: "./" names, directories first
    dirs = [_special("./btfhub-archive/debian/12/x86_64", tarfile.DIRTYPE)]
    theirs = _tar([*dirs, ("./package.json", plain), ("./client.bpf.o", obj),
                   ("./btfhub-archive/debian/12/x86_64/6.1.0-50-cloud-amd64.btf", B)])
    found = open_package(theirs).btf_archive
    assert found is not None and found.names() == ["debian/12/x86_64/6.1.0-50-cloud-amd64"]


def test_a_tar_without_a_package_or_with_two_archives_is_refused() -> None:
    with pytest.raises(PackageError, match=r"without a package\.json"):
        open_package(_tar([("btfhub-archive/debian/12/x86_64/r.btf", A)]))
    text, size = pack(BtfArchive(FILES))
    both = json.dumps(_package_doc(btf_archive=text, btf_archive_size=size)).encode()
    with pytest.raises(PackageError, match=r"both the tar and its package\.json"):
        open_package(_tar([("package.json", both), ("btfhub-archive/debian/12/x86_64/r.btf", A)]))


def test_header_problems() -> None:
    assert header_problem(A, len(A)) is None
    assert header_problem(b"", 0) == "it is empty"
    assert "shorter than a BTF header" in str(header_problem(A[:10], 10))
    assert "no BTF magic" in str(header_problem(b"\x7fELF" + bytes(40), 44))
    assert "version 2" in str(header_problem(A[:2] + b"\x02" + A[3:], len(A)))
    assert "outside the file" in str(header_problem(A, len(A) - 1))
