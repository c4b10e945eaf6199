"""`ecc --btfgen`: the object's minimal BTF for every kernel of a btfhub-style
archive, so the package runs on kernels without BTF of their own.

The archive is a directory tree in btfhub-archive's layout (aquasecurity/
btfhub-archive, which upstream's `ecc -b` clones):
`<os-release ID>/<VERSION_ID>/<arch>/<uname -r>.btf`, or `.btf.tar.xz` as
btfhub keeps them (a tar of the one .btf file). For each kernel of the
object's architecture, `bpftool gen min_core_btf` keeps only the types the
object's CO-RE relocations touch; the results go into the package
(format/btfarchive.py) and, as upstream's `ecc -b` writes it, into
`<name>.tar` beside package.json.

Nothing is downloaded: btfhub-archive is several GB, so it is named with
--btfhub-archive (default: upstream's place for it,
$XDG_DATA_HOME/eunomia/btfhub-archive or ~/.local/share/eunomia/...).

Measured on the project's 2-core VM, with Debian's 5.10, 6.1 and 6.12 cloud
kernels (3.4, 4.1 and 4.7 MB of BTF) and this VM's 6.18 (5.5 MB): bpftool
takes 0.017-0.038 s a kernel (0.025 on average, 40 object x kernel pairs),
and inflating a .btf.tar.xz (1.1 MB for 6.12) another 0.07 s; `ecc --btfgen`
over the three kernels adds 0.06-0.08 s to a build. Minimal BTF, in bytes:

    object (eunomia-bpf example)   5.10   6.1   6.12   6.18
    minimal                          25    25     25     25
    fentry-link                      75    75     75     75
    kprobe-link                     159   159    159    159
    opensnoop (example)             236   236    236    236
    tests' execmin                  309   309    309    309
    bootstrap                       331   331    331    331
    sigsnoop                        375   375    375    375
    runqlat                         523   488    488    488
    tcpstates                       673   673    673    673
    opensnoop (pyeunomia's tool)   1041  1041   1041   1113

For the three kernels package.json grows by 684 bytes (bootstrap), 848
(tcpstates), 920 (runqlat) and 1260 (pyeunomia's opensnoop).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import CompileError, PackageError, ToolError, UsageError
from ..external import find_bpftool, min_core_btf
from ..files import FileTooLarge, NotRegularFile, read_regular
from ..format.btf import header_problem
from ..format.btfarchive import MAX_MEMBER, BtfArchive, kernel_path
from ..format.escape import escape_text
from .toolchain import ARCHES

MAX_KERNEL_BTF = MAX_MEMBER  # a kernel's BTF: 3.4-5.5 MB (Debian 5.10 to 6.18)
MAX_COMPRESSED = 64 << 20  # a .btf.tar.xz: 0.8-1.1 MB
BTF_SUFFIX, XZ_SUFFIX = ".btf", ".btf.tar.xz"


def default_archive() -> str:
    """Where upstream's ecc keeps btfhub-archive."""
    data = os.environ.get("XDG_DATA_HOME", "").split(":")[0]
    if not os.path.isabs(data):
        data = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "eunomia", "btfhub-archive")


@dataclass(frozen=True)
class KernelFile:
    distro: str
    version: str
    arch: str
    release: str
    path: str  # the .btf or .btf.tar.xz file

    @property
    def name(self) -> str:
        return kernel_path(self.distro, self.version, self.arch, self.release)


@dataclass
class BtfgenResult:
    archive: BtfArchive
    considered: int  # kernels of the target architecture
    other_arches: int  # kernels skipped for their architecture
    failed: list[tuple[str, str]] = field(default_factory=list)  # (kernel, why)
    input_bytes: int = 0  # the kernels' whole BTF, read
    seconds: float = 0.0

    def summary(self, root: str, packed: int) -> str:
        kernels = len(self.archive)
        out = (f"minimal BTF for {kernels} kernel{'s' * (kernels != 1)} of {escape_text(root)}: "
               f"{self.archive.total_size()} bytes from {self.input_bytes >> 20} MiB of kernel BTF, "
               f"{packed} bytes in package.json ({self.seconds:.2f} s)")
        if self.other_arches:
            out += f"; {self.other_arches} of other architectures left out"
        if self.failed:
            name, why = self.failed[0]
            more = f" and {len(self.failed) - 1} more" if len(self.failed) > 1 else ""
            out += f"; {len(self.failed)} failed ({escape_text(name)}: {escape_text(why)}{more})"
        return out


def arch_dirs(target: str) -> set[str]:
    """The btfhub <arch> names of kernels an object built for `target`
    (an __TARGET_ARCH_ name, "x86") can run on: "x86_64" (btfhub's), and
    uname's other spellings."""
    return {name for name, arch in ARCHES.items() if arch == target} | {target}


def find_kernels(root: str, target: str) -> tuple[list[KernelFile], int]:
    """The archive's kernels for `target`, and how many of other
    architectures it has. Exactly four levels: <ID>/<VERSION_ID>/<arch>/<file>."""
    if not os.path.isdir(root):
        raise UsageError(f"--btfhub-archive {escape_text(root)}: no such directory: pass a directory laid out as "
                         "btfhub-archive (<ID>/<VERSION_ID>/<arch>/<release>.btf[.tar.xz]), e.g. a clone of "
                         "https://github.com/aquasecurity/btfhub-archive")
    wanted = arch_dirs(target)
    found: list[KernelFile] = []
    others = 0
    for distro, version, arch in _three_levels(root):
        folder = os.path.join(root, distro, version, arch)
        for entry in sorted(os.listdir(folder)):
            for suffix in (XZ_SUFFIX, BTF_SUFFIX):
                if entry.endswith(suffix) and len(entry) > len(suffix):
                    break
            else:
                continue
            if arch not in wanted:
                others += 1
                continue
            kernel = KernelFile(distro, version, arch, entry[: -len(suffix)], os.path.join(folder, entry))
            try:
                kernel.name  # noqa: B018 - a name btfhub's layout cannot hold is refused here, not at run time
            except PackageError as e:
                raise UsageError(f"--btfhub-archive: {e}") from None
            found.append(kernel)
    return found, others


def _three_levels(root: str) -> Iterable[tuple[str, str, str]]:
    def dirs(path: str) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
        except OSError:
            return []
    for distro in dirs(root):
        for version in dirs(os.path.join(root, distro)):
            for arch in dirs(os.path.join(root, distro, version)):
                yield distro, version, arch


def kernel_btf(kernel: KernelFile) -> bytes:
    """A kernel's whole BTF from its .btf or .btf.tar.xz file, bounded."""
    try:
        if not kernel.path.endswith(XZ_SUFFIX):
            data = read_regular(kernel.path, MAX_KERNEL_BTF)
        else:
            data = _from_tar_xz(read_regular(kernel.path, MAX_COMPRESSED), kernel.release)
    except (NotRegularFile, FileTooLarge) as e:
        raise ToolError(str(e)) from None
    except OSError as e:
        raise ToolError(f"cannot read it ({e.strerror})") from None
    problem = header_problem(data, len(data))
    if problem:
        raise ToolError(problem)
    return data


def _from_tar_xz(packed: bytes, release: str) -> bytes:
    """btfhub's <release>.btf.tar.xz: a tar of <release>.btf (xz-inflated
    to at most MAX_KERNEL_BTF bytes)."""
    import io
    import lzma
    import tarfile

    d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        tar = d.decompress(packed, MAX_KERNEL_BTF + (1 << 20))
    except lzma.LZMAError:
        raise ToolError("not xz data") from None
    if not d.eof:
        raise ToolError("its xz data is truncated or inflates past 65 MiB")
    try:
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
            members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(BTF_SUFFIX)]
            member = next((m for m in members if os.path.basename(m.name) == f"{release}.btf"), None)
            if member is None and len(members) == 1:
                member = members[0]
            if member is None:
                raise ToolError(f"no {release}.btf inside")
            f = archive.extractfile(member)
            data = f.read(MAX_KERNEL_BTF + 1) if f is not None else b""
    except (tarfile.TarError, EOFError, ValueError) as e:
        raise ToolError(f"not a readable tar ({e})") from None
    if len(data) > MAX_KERNEL_BTF:
        raise ToolError("its BTF is over 64 MiB")
    return data


def generate(obj: bytes, root: str, target: str, jobs: int | None = None) -> BtfgenResult:
    """Minimal BTF of `obj` for every kernel of `target`'s architecture in
    the archive at `root`. A kernel whose BTF cannot be read or cut is left
    out and reported; none at all is a CompileError."""
    started = time.monotonic()
    find_bpftool()  # ToolMissingError before any work
    kernels, others = find_kernels(root, target)
    if not kernels:
        raise CompileError(f"--btfhub-archive {escape_text(root)}: no kernel BTF for {target} "
                           f"({others} of other architectures): expected <ID>/<VERSION_ID>/<arch>/<release>.btf "
                           f"or .btf.tar.xz, with <arch> one of {', '.join(sorted(arch_dirs(target)))}")

    def one(kernel: KernelFile) -> tuple[KernelFile, bytes | None, int, str]:
        try:
            whole = kernel_btf(kernel)
            return kernel, min_core_btf(obj, whole), len(whole), ""
        except ToolError as e:
            return kernel, None, 0, str(e)

    files: dict[str, bytes] = {}
    failed: list[tuple[str, str]] = []
    total = 0
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:  # bpftool and lzma release the GIL
        for kernel, data, size, why in pool.map(one, kernels):
            total += size
            if data is None:
                failed.append((kernel.name.removesuffix(".btf"), why))
            else:
                files[kernel.name] = data
    if not files:
        name, why = failed[0]
        raise CompileError(f"--btfgen: no kernel's minimal BTF could be made ({escape_text(name)}: "
                           f"{escape_text(why)}; {len(failed)} failed)")
    return BtfgenResult(BtfArchive(files), len(kernels), others, failed, total, time.monotonic() - started)
