"""Minimal kernel BTF for many kernels, carried by a package (`ecc --btfgen`).

CO-RE relocation needs the running kernel's BTF. A kernel built without
CONFIG_DEBUG_INFO_BTF has none at /sys/kernel/btf/vmlinux, but libbpf can be
given a BTF file instead (btf_custom_path), and btfhub-archive (aquasecurity)
holds the BTF of thousands of distribution kernels, laid out as
`<os-release ID>/<VERSION_ID>/<arch>/<uname -r>.btf[.tar.xz]`. `bpftool gen
min_core_btf` cuts one kernel's 3.4-4.7 MB of BTF to what one object's
relocations need: 331 bytes for eunomia-bpf's bootstrap on each of Debian's
5.10, 6.1 and 6.12, 25 to 1113 bytes for the objects measured (see
compiler/btfgen.py).

Two forms carry such an archive, and both are read:

- upstream eunomia-bpf's (`ecc -b`, compiler/cmd/src/config/mod.rs,
  package_btfhub_tar): a tar holding `package.json`, the object, and
  `btfhub-archive/<ID>/<VERSION_ID>/<machine>/<release>.btf`; its ecli
  unpacks it (bpf-compatible-rs, unpack_tar) and, when
  /sys/kernel/btf/vmlinux is missing, takes the file named by os-release and
  uname (get_current_system_btf_file).
- ours: that same `btfhub-archive/` tree as a tar, xz-compressed and base64'd
  into the package's JSON beside the object, so a package stays one file
  (and one URL): `{"bpf_object": ..., "btf_archive": "<base64 xz tar>",
  "btf_archive_size": <tar bytes>, "meta": ...}`. Upstream's loader ignores
  keys it does not know, so such a package still runs there where the kernel
  has BTF. xz, not zlib: the minimal files of one object on many kernels are
  nearly the same bytes, and xz's dictionary spans the whole archive. Measured
  with 2000 made-up kernels of 309-byte files (three real ones, each copy
  changed in a byte): 618 KB of BTF, a 2 MB tar, 15 KB of base64 in the
  package; packing takes 1.3 s, unpacking 0.09 s, finding a kernel 30 µs.

Pure: bytes in, bytes out. Reading is bounded (a tar of at most
MAX_ARCHIVE bytes once inflated, regular files only, names checked: no
absolute path, no `..`), so a hostile package costs at most its size.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from ..errors import PackageError
from .btf import header_problem
from .escape import escape_text
from .units import size_text

if TYPE_CHECKING:
    import tarfile

ARCHIVE_DIR = "btfhub-archive"
PACKAGE_FILE = "package.json"
MAX_ARCHIVE = 64 << 20  # the tar, inflated: a whole kernel's BTF is 3-5 MB, a minimal one 0.1-1 KB
MAX_MEMBER = 64 << 20
# One path component of <ID>/<VERSION_ID>/<arch>/<release>.btf: what os-release
# and uname spell there (btfhub has "amzn/2", "centos/7", "ubuntu/20.04",
# "5.4.0-1009-aws", "6.12.95+deb12-cloud-amd64").
_PART = r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}"
_KERNEL_PATH = rf"({_PART})/({_PART})/({_PART})/({_PART})\.btf"
# btfhub names 64-bit ARM "arm64", uname says "aarch64"; upstream joins uname's
# machine as it is, so an archive may use either.
ARCH_ALIASES = {"aarch64": ("aarch64", "arm64"), "arm64": ("arm64", "aarch64")}
_TAR_TIME = 0  # reproducible archives: every entry dated 1970
XZ_MAGIC = b"\xfd7zXZ\x00"


@cache
def _kernel_path() -> re.Pattern[str]:
    """Compiled when first used (0.5 ms): only kernels without BTF need it."""
    return re.compile(_KERNEL_PATH)


class KernelId(NamedTuple):
    """The running system as btfhub names a kernel: os-release's ID and
    VERSION_ID ("" when unknown), uname's machine and release."""

    distro: str
    version: str
    machine: str
    release: str

    def describe(self) -> str:
        where = f"{self.distro}/{self.version}/{self.machine}" if self.distro else \
            f"unknown distribution, {self.machine}"
        return f"kernel {self.release} ({where})"


class Match(NamedTuple):
    path: str  # the archive's name for it: debian/12/x86_64/6.1.0-50-cloud-amd64.btf
    data: bytes
    exact: bool  # distribution and version matched too, not only the release and machine


def kernel_path(distro: str, version: str, arch: str, release: str) -> str:
    """The archive's name for one kernel; PackageError for a name btfhub's
    layout cannot hold (a '/', '..', control characters)."""
    path = f"{distro}/{version}/{arch}/{release}.btf"
    if not _kernel_path().fullmatch(path) or ".." in path:
        raise PackageError(f"'{escape_text(path)}' is not a btfhub archive name "
                           "(<ID>/<VERSION_ID>/<arch>/<release>.btf)")
    return path


class BtfArchive:
    """Kernel name (debian/12/x86_64/6.1.0-50-cloud-amd64.btf) -> its minimal BTF."""

    def __init__(self, files: Mapping[str, bytes]):
        self.files = dict(sorted(files.items()))

    def __len__(self) -> int:
        return len(self.files)

    def match(self, kernel: KernelId) -> Match | None:
        """The file for `kernel`: first the exact name upstream looks for
        (<ID>/<VERSION_ID>/<machine>/<release>.btf); failing that, the one
        file of any distribution with the same machine and release. The
        release string names one kernel build in practice (Debian's
        5.10.0-32-cloud-amd64), while os-release names the userland: in a
        container, or Debian 12's userland booting Debian 11's kernel, the
        two disagree and only the release is right. Several different
        files for the release: no match, rather than a guess."""
        arches = ARCH_ALIASES.get(kernel.machine, (kernel.machine,))
        for arch in arches:
            exact = f"{kernel.distro}/{kernel.version}/{arch}/{kernel.release}.btf"
            if exact in self.files:
                return Match(exact, self.files[exact], True)
        same = self.same_release(kernel)
        if same and len({self.files[p] for p in same}) == 1:
            return Match(same[0], self.files[same[0]], False)
        return None

    def same_release(self, kernel: KernelId) -> list[str]:
        arches = ARCH_ALIASES.get(kernel.machine, (kernel.machine,))
        return [p for p in self.files if p.split("/")[2] in arches and p.split("/", 3)[3] == f"{kernel.release}.btf"]

    def names(self) -> list[str]:
        return [p.removesuffix(".btf") for p in self.files]

    def total_size(self) -> int:
        return sum(len(d) for d in self.files.values())


# -- reading ------------------------------------------------------------------

def unpack(text: str, size: int | None, origin: str) -> BtfArchive:
    """Our embedded form: base64(xz(tar)) of the btfhub-archive/ tree."""
    import base64
    import binascii

    try:
        packed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PackageError(f"{origin}: btf_archive is not valid base64") from None
    if not packed.startswith(XZ_MAGIC):
        raise PackageError(f"{origin}: btf_archive is not xz data")
    try:
        import lzma
    except ImportError:  # pragma: no cover - a Python built without it
        raise PackageError(f"{origin}: btf_archive is xz data and this Python has no lzma module: "
                           "install a Python with lzma, or pass --btf PATH") from None
    d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        tar = d.decompress(packed, MAX_ARCHIVE + 1)
    except lzma.LZMAError:
        raise PackageError(f"{origin}: btf_archive is not xz data") from None
    if len(tar) > MAX_ARCHIVE:
        raise PackageError(f"{origin}: btf_archive inflates beyond {size_text(MAX_ARCHIVE)}")
    if not d.eof:
        raise PackageError(f"{origin}: btf_archive's xz data is truncated")
    if size is not None and size != len(tar):
        raise PackageError(f"{origin}: btf_archive_size says {size} but the archive has {len(tar)} bytes")
    package, archive = read_tar(tar, f"{origin}: btf_archive")
    if package is not None:
        raise PackageError(f"{origin}: btf_archive holds a {PACKAGE_FILE}: it carries kernel BTF only")
    return archive


def read_tar(data: bytes, origin: str) -> tuple[bytes | None, BtfArchive]:
    """The package.json (if any) and the kernel BTF files of a tar in
    upstream's layout. Only regular files are read; links, devices and names
    that climb out (/x, ../x) are refused; a BTF file must have a sound
    header; other files (the object, stray ones) are ignored."""
    import tarfile

    files: dict[str, bytes] = {}
    package: bytes | None = None
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                name = _member_name(member.name, origin)
                if name is None:
                    continue
                if not member.isfile():
                    if member.isdir():
                        continue
                    raise PackageError(f"{origin}: '{escape_text(member.name)}' is not a regular file: "
                                       "a package tar holds files only")
                if member.size > MAX_MEMBER:
                    raise PackageError(f"{origin}: '{escape_text(name)}' is over {size_text(MAX_MEMBER)}")
                if name == PACKAGE_FILE:
                    package = _read_member(tar, member)
                    continue
                if not name.startswith(ARCHIVE_DIR + "/"):
                    continue
                rest = name[len(ARCHIVE_DIR) + 1:]
                if not _kernel_path().fullmatch(rest):
                    continue  # a README, a .tar.xz btfhub keeps: not a file ecli looks for
                blob = _read_member(tar, member)
                problem = header_problem(blob, len(blob))
                if problem:
                    raise PackageError(f"{origin}: '{escape_text(name)}': {problem}")
                files[rest] = blob
    except (tarfile.TarError, EOFError, ValueError, UnicodeError, OSError) as e:
        raise PackageError(f"{origin}: not a readable tar ({escape_text(str(e))[:120]})") from None
    return package, BtfArchive(files)


def _member_name(raw: str, origin: str) -> str | None:
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if name in ("", "."):
        return None
    parts = name.split("/")
    if raw.startswith("/") or ".." in parts or "" in parts:
        raise PackageError(f"{origin}: the tar names '{escape_text(raw)}', outside the package: refusing it")
    return name


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise EOFError("a member without data")
    data = f.read(member.size + 1)
    if len(data) != member.size:
        raise EOFError(f"'{member.name}' is truncated")
    return data


# -- writing ------------------------------------------------------------------

def write_tar(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """A reproducible tar: every directory above a file, then the files, in
    name order, dated 1970 and owned by 0:0, as upstream's ecli unpacks it."""
    import tarfile

    items = sorted(entries)
    dirs = sorted({"/".join(name.split("/")[:i]) for name, _ in items for i in range(1, name.count("/") + 1)})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _TAR_TIME
            tar.addfile(info)
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, _TAR_TIME
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def pack(archive: BtfArchive) -> tuple[str, int]:
    """Our embedded form of `archive`: (base64 of the xz'd tar, the tar's size)."""
    import base64
    import lzma

    tar = write_tar((f"{ARCHIVE_DIR}/{path}", data) for path, data in archive.files.items())
    packed = lzma.compress(tar, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)
    return base64.b64encode(packed).decode("ascii"), len(tar)


def upstream_tar(package_json: bytes, object_file: str, obj: bytes, archive: BtfArchive) -> bytes:
    """Upstream's `ecc -b` output: package.json, the object and the archive tree."""
    entries = [(PACKAGE_FILE, package_json), (object_file, obj)]
    entries += [(f"{ARCHIVE_DIR}/{path}", data) for path, data in archive.files.items()]
    return write_tar(entries)
