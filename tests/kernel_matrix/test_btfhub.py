"""The host's kernel BTF for the rows that hide a guest's own: a vmlinuz taken
apart (bzImage header, compressed payload, ELF section), the btfhub-style
archive, the rows that hide BTF, and builds shared between rows."""

from __future__ import annotations

import lzma
import os
import re
import shutil
import struct
from pathlib import Path

import pytest

from kernel_matrix import actions, btfhub, builds, checks, layers, matrix

from ..conftest import require

CACHED = Path("/var/cache/pyeunomia/kernels/kernels")


def elf_with(sections: dict[str, bytes]) -> bytes:
    """A little-endian ELF64 image with these sections (and a name table)."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n in [*sections, ".shstrtab"])
    body = bytearray(b"\x7fELF\x02\x01\x01" + bytes(57))
    offsets = []
    for data in [*sections.values(), names]:
        offsets.append((len(body), len(data)))
        body += data
    shoff = len(body)
    headers = [bytes(64)]
    at = 1
    for (off, size), name in zip(offsets, [*sections, ".shstrtab"], strict=True):
        headers.append(struct.pack("<IIQQQQIIQQ", at, 1, 0, 0, off, size, 0, 0, 1, 0))
        at += len(name) + 1
    body += b"".join(headers)
    struct.pack_into("<Q", body, 0x28, shoff)
    struct.pack_into("<HHH", body, 0x3A, 64, len(headers), len(headers) - 1)
    return bytes(body)


def bzimage(payload: bytes) -> bytes:
    """A bzImage whose payload is `payload` plus the 4-byte size the build appends."""
    setup = bytearray(5 * 512)
    setup[0x1F1] = 4
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", setup, 0x248, 16, len(payload) + 4)
    return bytes(setup) + bytes(16) + payload + struct.pack("<I", 12345) + b"trailing"


def test_the_btf_of_a_vmlinuz(tmp_path: Path) -> None:
    btf = b"\x9f\xeb\x01\x00" + bytes(20)
    elf = elf_with({".text": b"Linux version 6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) ...",
                    ".BTF": btf})
    image = bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ))
    require(shutil.which("xz") is not None, "xz is not installed")
    assert btfhub.extract(image) == (btf, "6.1.0-50-cloud-amd64")


def test_what_cannot_be_taken_apart_is_said() -> None:
    with pytest.raises(btfhub.ExtractError, match="not a bzImage"):
        btfhub.payload(b"MZ" + bytes(1000))
    with pytest.raises(btfhub.ExtractError, match="not handled here"):
        btfhub.inflate(b"\x00\x01\x02\x03")
    with pytest.raises(btfhub.ExtractError, match=r"no \.BTF section"):
        btfhub.elf_section(elf_with({".text": b"x"}), ".BTF")


def test_debian_version_ids() -> None:
    assert [btfhub.version_id(k.suite) for k in matrix.KERNELS] == ["11", "12", "12"]
    with pytest.raises(btfhub.ExtractError):
        btfhub.version_id("sid")


def test_the_matrix_kernels_as_the_cache_holds_them(tmp_path: Path) -> None:
    """Where `make test-kernels` has run: the three kernels' BTF and release
    strings, and the archive ecc --btfgen is given."""
    images = sorted(CACHED.glob("*/vmlinuz"))
    if len(images) < 3:
        # make test runs before make test-kernels on a fresh machine: .ci/run runs this test again after it,
        # where a missing cache is a failure
        assert not os.environ.get("PYEUNOMIA_REQUIRE_KERNEL_CACHE"), f"no kernel matrix cache at {CACHED}"
        pytest.skip(f"no kernel matrix cache at {CACHED} (make test-kernels makes it)")
    cache = layers.Cache(tmp_path)
    kernels = []
    for image, kernel in zip(images, sorted(matrix.KERNELS, key=lambda k: k.label), strict=True):
        kernels.append(btfhub.KernelBtf(cache, image.parent.name, kernel.suite, image))
    names = sorted(k.archive_name for k in kernels)
    for name, pattern in zip(names, [r"debian/11/x86_64/5\.10\.0-\d+-cloud-amd64\.btf",
                                     r"debian/12/x86_64/6\.1\.0-\d+-cloud-amd64\.btf",
                                     r"debian/12/x86_64/6\.12\.\d+\+deb12-cloud-amd64\.btf"], strict=True):
        assert re.fullmatch(pattern, name), name
        assert image.name == "vmlinuz" and image.parent.name.startswith("linux-image-")
    assert all(3 << 20 < k.btf.stat().st_size < 8 << 20 for k in kernels)  # 3.4, 4.1 and 4.7 MB as measured
    root = btfhub.archive(cache, kernels)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.btf")) == names
    assert btfhub.archive(cache, kernels) == root  # keyed by content: made once


def test_the_rows_that_hide_btf() -> None:
    table = matrix.by_name()
    hidden = [p for p in matrix.PROGRAMS if p.name.startswith("nobtf/")]
    assert len(hidden) == 9
    for p in hidden:
        assert p.run[:4] == ("unshare", "-m", "sh", "-c") and "/sys/kernel/btf" in p.run[4]
    assert set(table["nobtf/bootstrap"].unsupported) == {"5.10", "6.1", "6.12"}
    assert set(table["nobtf/fentry-btfgen"].unsupported) == {"5.10", "6.1", "6.12"}
    assert not table["nobtf/btfgen"].unsupported and not table["nobtf/ecli--btf"].unsupported
    build = table["nobtf/btfgen.tar"].build
    assert build is not None and build.btfgen and build.tar
    assert table["nobtf/btfgen.tar"].package_file == "/kmx/pkg/nobtf_btfgen.tar/bootstrap.tar"
    assert matrix.GUEST_BTF == btfhub.GUEST_BTF


def test_rows_with_one_build_each_get_their_own_path() -> None:
    """Two rows of one build share its cache entry; each finds the package
    at its own guest path (before, the second got the first's)."""
    one = matrix.row("a", matrix.example("minimal"), "ecli run {pkg}", actions.write_null, [checks.trace("x")])
    two = matrix.row("b", matrix.example("minimal"), "ecli run {pkg}", actions.write_null, [checks.trace("x")])
    stored = builds._neutral(one, {one.package_file: b"pkg", "/kmx/bin/helper": b"bin"})
    assert builds._named_for(two, stored) == {two.package_file: b"pkg", "/kmx/bin/helper": b"bin"}
