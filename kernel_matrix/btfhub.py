"""Kernel BTF on the host, for the rows that hide a guest's own (issue 13).

No -dbg package is needed: a Debian vmlinuz is a bzImage whose setup header
says where the compressed kernel lies (payload_offset and payload_length);
inflated (lz4 for 5.10 and 6.1, zstd for 6.12, measured), it is the vmlinux
ELF, whose .BTF section is the BTF /sys/kernel/btf/vmlinux would show:
3.4, 4.1 and 4.7 MB for 5.10, 6.1 and 6.12, in about 0.5 s each. The release
string (`uname -r`) comes from the image's "Linux version ..." banner.

Each kernel's BTF is cached under kernel-btf/<package>/ in the cache. From
them come a btfhub-style archive (debian/<VERSION_ID>/x86_64/<release>.btf,
the VERSION_ID of the Debian release whose kernel it is) for `ecc --btfgen`,
and for each guest a layer holding its own kernel's BTF at /kmx/btf/vmlinux,
for `--btf`.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path

from . import cpio
from .layers import Cache, prune, publish_bytes

GUEST_BTF = "/kmx/btf/vmlinux"
SUITE_VERSION_IDS = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13"}
ARCH = "x86_64"
# The compressed kernel's first bytes, and the tool (and Debian package) that inflates it.
DECOMPRESSORS = ((b"\x02\x21\x4c\x18", "lz4"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"\xfd7zXZ\x00", "xz"),
                 (b"\x1f\x8b", "gzip"))
_BANNER = re.compile(rb"Linux version (\S+) \(")


class ExtractError(Exception):
    """A vmlinuz whose BTF cannot be had; the message says why."""


def version_id(suite: str) -> str:
    """Debian's VERSION_ID for a suite ("bookworm-backports" -> "12")."""
    base = suite.split("-")[0]
    if base not in SUITE_VERSION_IDS:
        raise ExtractError(f"unknown Debian suite {suite}: add it to SUITE_VERSION_IDS")
    return SUITE_VERSION_IDS[base]


def payload(bzimage: bytes) -> bytes:
    """The compressed kernel of a bzImage (x86 boot protocol 2.08+), without
    the 4-byte uncompressed size the kernel's build appends to it."""
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        raise ExtractError("not a bzImage (no HdrS boot header)")
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if not length or start + length > len(bzimage):
        raise ExtractError("the bzImage's payload lies outside it")
    return bzimage[start:start + length - 4]


def inflate(packed: bytes) -> bytes:
    """The vmlinux ELF inside a bzImage's payload."""
    tool = next((name for magic, name in DECOMPRESSORS if packed.startswith(magic)), None)
    if tool is None:
        raise ExtractError(f"the kernel is compressed in a way not handled here (starts {packed[:4].hex()})")
    if shutil.which(tool) is None:
        raise ExtractError(f"{tool} is not installed (apt-get install {tool})")
    done = subprocess.run([tool, "-dc"], input=packed, capture_output=True, check=False, timeout=300)
    if not done.stdout.startswith(b"\x7fELF"):
        raise ExtractError(f"{tool} -d gave no ELF: {done.stderr.decode(errors='replace').strip()[:200]}")
    return done.stdout


def elf_section(elf: bytes, name: str) -> bytes:
    """A section of a little-endian ELF64 image, found through its section headers."""
    if elf[4:6] != b"\x02\x01":
        raise ExtractError("not a little-endian ELF64 image")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    if shoff + shnum * shentsize > len(elf) or shstrndx >= shnum:
        raise ExtractError("the image's section headers lie outside it")

    def header(i: int) -> tuple[int, int, int]:
        sh_name, = struct.unpack_from("<I", elf, shoff + i * shentsize)
        sh_offset, sh_size = struct.unpack_from("<QQ", elf, shoff + i * shentsize + 0x18)
        return sh_name, sh_offset, sh_size

    _, str_off, str_size = header(shstrndx)
    names = elf[str_off:str_off + str_size]
    for i in range(shnum):
        sh_name, off, size = header(i)
        if names[sh_name:names.find(b"\0", sh_name)] == name.encode():
            return elf[off:off + size]
    raise ExtractError(f"the image has no {name} section (a kernel built without CONFIG_DEBUG_INFO_BTF)")


def extract(vmlinuz: bytes) -> tuple[bytes, str]:
    """(the kernel's BTF, its release string) from a vmlinuz."""
    elf = inflate(payload(vmlinuz))
    found = _BANNER.search(elf)
    if found is None:
        raise ExtractError("no 'Linux version' banner in the image")
    btf = elf_section(elf, ".BTF")
    if btf[:2] != b"\x9f\xeb":
        raise ExtractError("the image's .BTF section is not BTF")
    return btf, found.group(1).decode("ascii", "replace")


class KernelBtf:
    """One matrix kernel's BTF, extracted once and cached."""

    def __init__(self, cache: Cache, slug: str, suite: str, vmlinuz: Path) -> None:
        folder = cache.root / "kernel-btf" / slug
        btf, release_file = folder / "vmlinux.btf", folder / "release"
        if not (btf.exists() and release_file.exists()):
            data, release = extract(vmlinuz.read_bytes())
            publish_bytes(btf, data)
            publish_bytes(release_file, release.encode())
        self.btf = btf
        self.release = release_file.read_text().strip()
        self.distro_version = version_id(suite)

    @property
    def archive_name(self) -> str:
        return f"debian/{self.distro_version}/{ARCH}/{self.release}.btf"

    def layer(self) -> Path:
        """A cpio layer that puts this kernel's BTF at GUEST_BTF."""
        path = self.btf.with_name("btf.cpio")
        if not path.exists():
            buf = io.BytesIO()
            w = cpio.Writer(buf)
            w.parents(GUEST_BTF.lstrip("/"))
            w.file(GUEST_BTF.lstrip("/"), self.btf.read_bytes())
            w.close()
            publish_bytes(path, buf.getvalue())
        return path


def archive(cache: Cache, kernels: Sequence[KernelBtf]) -> Path:
    """A btfhub-style archive of `kernels` (for `ecc --btfgen`), keyed by its
    content: debian/<VERSION_ID>/x86_64/<release>.btf each."""
    h = hashlib.sha256()
    for k in sorted(kernels, key=lambda k: k.archive_name):
        h.update(k.archive_name.encode() + b"\0" + k.btf.read_bytes())
    key = h.hexdigest()[:20]
    root = cache.root / "btfhub" / key
    if not root.is_dir():
        part = root.with_name(key + ".part")
        shutil.rmtree(part, ignore_errors=True)
        for k in kernels:
            target = part / k.archive_name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(k.btf, target)
        part.replace(root)
    prune(root.parent, {key})
    return root


def prune_kernels(cache: Cache, slugs: Sequence[str]) -> None:
    prune(cache.root / "kernel-btf", set(slugs))
