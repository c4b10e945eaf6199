"""ecc: compile an eBPF C program into a package that `ecli run` runs.

    ecc SOURCE.bpf.c [HEADER.h] [-o OUTDIR] [-I DIR]... [--cflags FLAGS]
        [--vmlinux PATH] [--arch ARCH] [-b [--btfhub-archive DIR]]

Upstream ecc's own options work too (its compiler/cmd/src/config/mod.rs):
-o/--output-path, -a/--additional-cflags FLAG (one clang argument each),
-y/--yaml, --header-only, --wasm-header, -w/--workspace-path DIR,
-c/--clang-bin, -l/--llvm-strip-bin, -n/--no-generate-package-json; -s/
--standalone (upstream's C runner built into an executable) is refused.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
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
    p.add_argument("-o", "--output", "--output-path", metavar="OUTDIR",
                   help="where to write the package (default: the source's directory)")
    p.add_argument("-I", dest="include_dirs", metavar="DIR", action="append", default=[],
                   help="add DIR to the include path (repeatable)")
    p.add_argument("--cflags", metavar="FLAGS", default="", help="extra clang flags, e.g. --cflags='-DDEBUG -Wall'")
    p.add_argument("-a", "--additional-cflags", metavar="FLAG", action="append", default=[],
                   help="one extra clang argument, as upstream's ecc takes it (repeatable): -a -DDEBUG -a -Wall")
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
    up = p.add_argument_group("upstream ecc's options")
    up.add_argument("-y", "--yaml", action="store_true",
                    help="write the skeleton and package as YAML (<name>.skel.yaml, package.yaml), as upstream's "
                         "ecc -y; ecli runs package.json, as upstream's ecli")
    up.add_argument("--header-only", action="store_true",
                    help="SOURCE is a header: write an object with no program whose BTF carries its structs")
    up.add_argument("--wasm-header", action="store_true",
                    help="also write OUTDIR/ewasm-skel.h: the package as a C string, for upstream's Wasm runner")
    up.add_argument("-w", "--workspace-path", metavar="DIR",
                    help="upstream's workspace: its include/ and include/vmlinux/ARCH/ come first on the include "
                         "path, its bin/bpftool makes vmlinux.h")
    up.add_argument("-c", "--clang-bin", metavar="PATH", help="the clang to compile with (as $PYEUNOMIA_CLANG)")
    up.add_argument("-l", "--llvm-strip-bin", metavar="PATH",
                    help="the llvm-strip to strip with (as $PYEUNOMIA_LLVM_STRIP)")
    up.add_argument("-n", "--no-generate-package-json", action="store_true",
                    help="write no package, only the object and its skeleton")
    up.add_argument("-s", "--standalone", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(_flag_values(argv))
    setup_logging(args.verbose)
    try:
        cflags = (*shlex.split(args.cflags), *args.additional_cflags)
    except ValueError as e:
        raise UsageError(f"--cflags: {e}: quote it as one shell word") from None
    if args.btfhub_archive is not None and not args.btfgen:
        raise UsageError("--btfhub-archive is for --btfgen: add -b")
    _upstream_only(args)
    from ..compiler.btfgen import default_archive
    from ..compiler.build import BuildOptions, build
    from ..compiler.outputs import write_outputs
    from ..compiler.upstream import build_header_only, workspace_include_dirs

    include_dirs = list(args.include_dirs)
    if args.workspace_path is not None:
        include_dirs = workspace_include_dirs(args.workspace_path, args.arch) + include_dirs
    archive = (args.btfhub_archive or default_archive()) if args.btfgen else None
    started = time.monotonic()
    options = BuildOptions(args.source, args.header, tuple(include_dirs), cflags, args.vmlinux, args.arch, archive)
    result = build_header_only(options) if args.header_only else build(options)
    if result.warnings.strip():
        sys.stderr.write(result.warnings if result.warnings.endswith("\n") else result.warnings + "\n")
    for note in result.notes:
        sys.stderr.write(f"ecc: {escape_text(note)}\n")
    outdir = args.output or os.path.dirname(args.source) or "."
    written = write_outputs(result, outdir, yaml=args.yaml, package=not args.no_generate_package_json,
                            wasm=args.wasm_header)
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


def _flag_values(argv: list[str]) -> list[str]:
    """`-a -DDEBUG=1`, as upstream's README writes it (and `--cflags -Wall`):
    argparse would take the value for an option of its own, so it is joined
    to its flag."""
    out: list[str] = []
    joined = iter(argv)
    for arg in joined:
        if arg == "--":
            out.append(arg)
            out.extend(joined)
        elif arg in ("-a", "--additional-cflags", "--cflags"):
            value = next(joined, None)
            flag = "--cflags" if arg == "--cflags" else "--additional-cflags"
            out.append(arg if value is None else f"{flag}={value}")
        else:
            out.append(arg)
    return out


def _upstream_only(args: argparse.Namespace) -> None:
    """Upstream options with no counterpart, and those that set a tool."""
    if args.standalone:
        raise UsageError("-s/--standalone builds upstream's C runner into an executable, which pyeunomia has no "
                         "counterpart of: run the package with 'ecli run OUTDIR/package.json'")
    if args.header_only and args.header is not None:
        raise UsageError("--header-only takes one header as SOURCE, and its structs are the export types: "
                         f"leave out {args.header}")
    tools = [(args.clang_bin, "-c/--clang-bin", "PYEUNOMIA_CLANG"),
             (args.llvm_strip_bin, "-l/--llvm-strip-bin", "PYEUNOMIA_LLVM_STRIP")]
    if args.workspace_path is not None:
        from ..compiler.upstream import workspace_bpftool

        tools.append((workspace_bpftool(args.workspace_path), "-w/--workspace-path's bin/bpftool",
                      "PYEUNOMIA_BPFTOOL"))
    for value, option, variable in tools:
        if value is None:
            continue
        if shutil.which(value) is None:
            raise UsageError(f"{option} {value}: no such program: pass the path of an executable")
        os.environ[variable] = value  # compiler/toolchain.py and external.py find the tools by these


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def entry() -> None:
    run_command("ecc", main)


if __name__ == "__main__":
    entry()
