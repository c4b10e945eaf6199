"""Which BTF a load's CO-RE relocations resolve against, and saying why not.

In order:

1. a BTF file the user names (`--btf PATH`, Program(btf=...)), like libbpf's
   btf_custom_path and ebpf_exporter's --btf.path: a whole kernel's BTF or a
   minimal one (`bpftool gen min_core_btf`). The minimal-BTF cache is then
   not used.
2. the kernel's own /sys/kernel/btf/vmlinux when it is usable (or the
   minimal file cached for it, runner/corebtf.py);
3. else the package's own minimal BTF for this kernel (`ecc --btfgen`,
   format/btfarchive.py), found by os-release and uname as upstream does;
4. else one line saying what is missing and what to do.

A file is read here, not by libbpf: opened without blocking, regular files
only, at most MAX_BTF_FILE bytes, the BTF header checked, so a FIFO, a
device or a 2 GB file is refused in one line and libbpf parses exactly the
bytes that were checked. libbpf takes a path and reads it when the object
loads, so the bytes go into a memory file (memfd) it opens as
/proc/self/fd/N: nothing is written to disk, and nothing is left behind
however the run ends (SIGKILL included): the memory goes with the last fd.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ..errors import UnsupportedFeatureError, UsageError
from ..files import FileTooLarge, NotRegularFile, read_regular
from ..format.btf import HEADER_SIZE, header_problem
from ..format.btfarchive import KernelId
from ..format.escape import escape_text
from ..format.package import Package
from ..format.units import size_text

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")  # os-release(5): the first that exists
MAX_OS_RELEASE = 64 << 10  # a few hundred bytes in practice
MAX_BTF_FILE = 64 << 20  # a kernel's BTF is 3.4-5.5 MB (Debian 5.10 to 6.18), a minimal one 0.1-1 KB


class BtfFile(NamedTuple):
    """A BTF file's bytes, read and checked once: the exporter reads it
    before it drops its privileges and loads programs from it later."""

    name: str  # as messages name it: "--btf /path"
    data: bytes


class BtfSource(NamedTuple):
    """What CO-RE relocation is given: `data` through a memory file, or
    nothing (libbpf reads the kernel's own BTF, or the loader the cache)."""

    kind: str  # "kernel", "file" (--btf) or "package" (its btfgen archive)
    label: str  # for messages: "--btf /x", "the package's BTF for debian/12/x86_64/6.1.0-50-cloud-amd64"
    data: bytes | None = None


def read_btf_file(path: str | os.PathLike[str], option: str = "--btf") -> BtfFile:
    """The BTF file at `path`, checked; UsageError in one line otherwise."""
    shown = f"{option} {escape_text(os.fspath(path))}"
    todo = "pass a kernel's BTF file (its /sys/kernel/btf/vmlinux, or bpftool gen min_core_btf output)"
    try:
        data = read_regular(path, MAX_BTF_FILE)
    except NotRegularFile as e:
        raise UsageError(f"{shown}: not a regular file ({e.kind}): {todo}") from None
    except FileTooLarge:
        raise UsageError(f"{shown}: over {size_text(MAX_BTF_FILE)}, more than any kernel's BTF: {todo}") from None
    except OSError as e:
        raise UsageError(f"{shown}: cannot read it ({e.strerror}): {todo}") from None
    if data.startswith(b"\x7fELF"):
        raise UsageError(f"{shown}: an ELF image, not raw BTF: extract its BTF with "
                         "'objcopy --dump-section .BTF=FILE IMAGE' and pass FILE")
    problem = header_problem(data, len(data))
    if problem is not None:
        raise UsageError(f"{shown}: {problem}: {todo}")
    return BtfFile(shown, data)


def kernel_btf_problem() -> str | None:
    """Why the kernel's own BTF cannot serve ("is missing", "is unusable (it
    is empty)", ...), or None when it looks usable. A probe of what is there,
    not a version check: the file is missing on a kernel built without
    CONFIG_DEBUG_INFO_BTF, and an empty file bound over it makes libbpf fail
    with ESRCH ("No such process"). Only the 24-byte header is read (sysfs
    reports the file's true size): about 10 µs."""
    try:
        fd = os.open(KERNEL_BTF, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        head = os.pread(fd, HEADER_SIZE, 0)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    finally:
        os.close(fd)
    problem = header_problem(head, st.st_size)
    return f"is unusable ({problem})" if problem else None


def os_release(paths: tuple[str, ...] = OS_RELEASE) -> dict[str, str]:
    """os-release(5) as a dict (ID, VERSION_ID, ...); empty when there is none."""
    for path in paths:
        try:
            text = read_regular(path, MAX_OS_RELEASE).decode("utf-8", "replace")
        except FileNotFoundError:
            continue
        except (OSError, NotRegularFile, FileTooLarge):
            return {}
        return parse_os_release(text)
    return {}


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines, the value unquoted as a shell would (the common
    forms: 'x', "x" with \\-escapes, bare)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key.isidentifier():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                for ch in '\\"$`':
                    value = value.replace("\\" + ch, ch)
        out[key] = value
    return out


def this_kernel() -> KernelId:
    """How btfhub (and upstream's loader) would name the running kernel."""
    info = os_release()
    uts = os.uname()
    return KernelId(info.get("ID", ""), info.get("VERSION_ID", ""), uts.machine, uts.release)


def choose(package: Package, btf: BtfFile | None) -> BtfSource:
    """The BTF for loading `package` here (see the module docstring);
    UnsupportedFeatureError, one line, when there is none."""
    if btf is not None:
        return BtfSource("file", btf.name, btf.data)
    problem = kernel_btf_problem()
    if problem is None:
        return BtfSource("kernel", KERNEL_BTF)
    todo = ("pass this kernel's BTF with --btf PATH, build the package with ecc --btfgen for this kernel, "
            "or use a kernel built with CONFIG_DEBUG_INFO_BTF=y")
    if not package.has_btf_archive:
        raise UnsupportedFeatureError("BTF", f"{KERNEL_BTF} {problem}: {todo}")
    archive = package.btf_archive
    assert archive is not None
    kernel = this_kernel()
    found = archive.match(kernel)
    if found is None:
        same = archive.same_release(kernel)
        why = (f"several different files for it ({escape_text(', '.join(same))})" if same else
               f"it carries BTF for {len(archive)} other kernel{'s' * (len(archive) != 1)}")
        raise UnsupportedFeatureError(
            "BTF", f"{KERNEL_BTF} {problem}, and {escape_text(package.name)} has no BTF for "
                   f"{escape_text(kernel.describe())}: {why}: {todo}")
    return BtfSource("package", f"the package's BTF for {escape_text(found.path.removesuffix('.btf'))}", found.data)


@contextmanager
def memory_file(data: bytes, name: str = "pyeunomia-btf") -> Iterator[str]:
    """`data` as a path libbpf can open (/proc/self/fd/N of a memfd), for as
    long as the block runs."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
