"""ecc: compile an eBPF C program into a package that `ecli run` runs.

    ecc SOURCE.bpf.c [HEADER.h] [-o OUTDIR] [-I DIR]... [--cflags FLAGS]
        [--vmlinux PATH] [--arch ARCH] [-b [--btfhub-archive DIR]]
"""

from __future__ import annotations

import os
import shlex
import sys
import time

from .. import __version__
from ..errors import UsageError
from ..format.escape import escape_text
from .common import ArgumentParser, run_command, setup_logging


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="ecc",
        description="Compile an eBPF program (libbpf-style C with CO-RE) into an eunomia-bpf package: "
                    "OUTDIR/package.json, OUTDIR/<name>.skel.json and OUTDIR/<name>.bpf.o. Structs declared "
                    "in HEADER become the event types ecli decodes; /// doc comments become help texts.",
        epilog="Needs clang, llvm-strip (package llvm), bpftool and libbpf-dev. vmlinux.h is generated from "
               "/sys/kernel/btf/vmlinux and cached under $XDG_CACHE_HOME/pyeunomia (default ~/.cache). "
               "PYEUNOMIA_CLANG, PYEUNOMIA_LLVM_STRIP and PYEUNOMIA_BPFTOOL choose other tool binaries. "
               "make toolchain's libbpf headers 1.4+ and bpftool 7.5+ come first when installed "
               "(PYEUNOMIA_TOOLCHAIN=system: the system's only).")
    p.add_argument("-V", "--version", action="version", version=f"pyeunomia {__version__}")
    p.add_argument("source", metavar="SOURCE.bpf.c", help="the eBPF program")
    p.add_argument("header", metavar="HEADER.h", nargs="?", help="header whose structs are exported as event types")
    p.add_argument("-o", "--output", metavar="OUTDIR",
                   help="where to write the package (default: the source's directory)")
    p.add_argument("-I", dest="include_dirs", metavar="DIR", action="append", default=[],
                   help="add DIR to the include path (repeatable)")
    p.add_argument("--cflags", metavar="FLAGS", default="", help="extra clang flags, e.g. --cflags='-DDEBUG -Wall'")
    p.add_argument("--vmlinux", metavar="PATH",
                   help="vmlinux.h to compile against (or a BTF/ELF file to make it from) instead of the running "
                        "kernel's")
    p.add_argument("--arch", metavar="ARCH", help="target architecture (default: this machine's), e.g. x86, arm64")
    p.add_argument("-b", "--btfgen", action="store_true",
                   help="also put the object's minimal BTF for every kernel of a btfhub archive into the package "
                        "(and write OUTDIR/<name>.tar, upstream's form), so it runs on kernels without BTF")
    p.add_argument("--btfhub-archive", metavar="DIR",
                   help="the archive for --btfgen, laid out as btfhub-archive: <ID>/<VERSION_ID>/<arch>/"
                        "<release>.btf[.tar.xz] (default: upstream's, $XDG_DATA_HOME/eunomia/btfhub-archive)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the commands ecc runs")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        cflags = tuple(shlex.split(args.cflags))
    except ValueError as e:
        raise UsageError(f"--cflags: {e}: quote it as one shell word") from None
    if args.btfhub_archive is not None and not args.btfgen:
        raise UsageError("--btfhub-archive is for --btfgen: add -b")
    from ..compiler.btfgen import default_archive
    from ..compiler.build import BuildOptions, build, write_outputs

    archive = (args.btfhub_archive or default_archive()) if args.btfgen else None
    started = time.monotonic()
    result = build(BuildOptions(args.source, args.header, tuple(args.include_dirs), cflags, args.vmlinux, args.arch,
                                archive))
    if result.warnings.strip():
        sys.stderr.write(result.warnings if result.warnings.endswith("\n") else result.warnings + "\n")
    for note in result.notes:
        sys.stderr.write(f"ecc: {escape_text(note)}\n")
    outdir = args.output or os.path.dirname(args.source) or "."
    written = write_outputs(result, outdir)
    skel = result.meta["bpf_skel"]
    exports = ", ".join(f"struct {t['name']}" for t in result.meta.get("export_types", [])) or "none"
    sys.stderr.write(f"ecc: {result.name}: {_count(len(skel['progs']), 'program')}, "
                     f"{_count(len(skel['maps']), 'map')}, export types: {exports} "
                     f"({time.monotonic() - started:.2f} s)\n")
    if result.btfgen is not None and result.packed_archive is not None and archive is not None:
        sys.stderr.write(f"ecc: btfgen: {result.btfgen.summary(archive, len(result.packed_archive[0]))}\n")
    for path in written:
        sys.stderr.write(f"ecc: wrote {path}\n")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def entry() -> None:
    run_command("ecc", main)


if __name__ == "__main__":
    entry()
