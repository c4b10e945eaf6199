"""`make test-kernels`: prepare everything once, boot each kernel once, print the table.

    python -m kernel_matrix [--kernel 6.1] [--only opensnoop] [--offline] [--out DIR]

Exit status 0 when no cell FAILED, 1 otherwise, 2 for a bad table or
missing host tools, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import py_compile
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import btfhub, cpio, debian, layers, matrix, qemu, results
from .builds import Built, Roots, build_all
from .procs import CommandError, log, on_terminate, remove_tree

PACKAGE_DIR = Path(__file__).resolve().parent
REPO = PACKAGE_DIR.parent
GUEST_PYTHON = (3, 11)  # Debian bookworm's, in every guest
GUEST_MODULES = ("__init__.py", "actions.py", "checks.py", "guest.py", "matrix.py",
                 *sorted(p.name for p in PACKAGE_DIR.glob("tools_*.py")))  # the catalogue's rows (matrix._catalogue)
HOST_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "mmdebstrap": "mmdebstrap", "gcc": "gcc",
              "dpkg-deb": "dpkg", "apt-get": "apt", "lz4": "lz4", "zstd": "zstd"}  # lz4, zstd: kernel BTF


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="kernel-matrix", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", action="append", metavar="LABEL",
                    help=f"only this kernel (repeatable): {', '.join(k.label for k in matrix.KERNELS)}")
    ap.add_argument("--only", action="append", metavar="PROGRAM",
                    help="only programs of the table matching this name or pattern (repeatable; 'ex/*')")
    ap.add_argument("--offline", action="store_true", help="use the cached apt lists; do not ask the mirror")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "kernel-matrix",
                    help="where the table, the JSON results and the serial logs go (default: %(default)s)")
    ap.add_argument("--ecc", help="the ecc to compile with (default: the one next to this Python)")
    ap.add_argument("--examples", type=Path,
                    default=Path(os.environ.get("PYEUNOMIA_EUNOMIA_EXAMPLES",
                                                REPO.parent / "shared" / "fixtures" / "eunomia-examples")),
                    help="eunomia-bpf's examples (default: %(default)s)")
    ap.add_argument("--cpus", type=int, default=2, help="guest CPUs (default: %(default)s)")
    ap.add_argument("--memory", type=int, default=1536, help="guest memory in MiB (default: %(default)s)")
    return ap.parse_args(argv)


def find_ecc(given: str | None) -> str:
    if given:
        return given
    beside = Path(sys.executable).parent / "ecc"
    return str(beside) if beside.exists() else shutil.which("ecc") or "ecc"


def payload(programs: list[matrix.Program], built: dict[str, Built]) -> bytes:
    """The per-run layer: /init, the guest runner, its plan, the built programs."""
    buf = io.BytesIO()
    w = cpio.Writer(buf)
    w.file("init", (PACKAGE_DIR / "init").read_bytes(), 0o755)
    for name in GUEST_MODULES:
        w.parents(f"kmx/kernel_matrix/{name}")
        w.file(f"kmx/kernel_matrix/{name}", (PACKAGE_DIR / name).read_bytes())
        if sys.version_info[:2] == GUEST_PYTHON:  # bytecode the guest's python3 can use as it is
            w.parents(f"kmx/kernel_matrix/__pycache__/{name}")
            w.file(f"kmx/kernel_matrix/__pycache__/{name[:-3]}.{sys.implementation.cache_tag}.pyc",
                   bytecode(PACKAGE_DIR / name, f"/kmx/kernel_matrix/{name}"))
    plan = {"checks": [p.name for p in programs]}
    w.file("kmx/plan.json", json.dumps(plan).encode())
    for p in programs:
        for guest_path, data in sorted(built[p.name].files.items()):
            name = guest_path.lstrip("/")
            w.parents(name)
            w.file(name, data, 0o755 if name.startswith("kmx/bin/") else 0o644)
    w.close()
    return buf.getvalue()


def bytecode(source: Path, guest_path: str) -> bytes:
    """Compiled once here; valid in the guest whatever its file times."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.pyc"
        py_compile.compile(str(source), str(out), guest_path, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        return out.read_bytes()


def concatenate(parts: list[Path], extra: bytes, out: Path) -> None:
    with open(out, "wb") as f:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
        f.write(extra)


def kernel_packages(cache: layers.Cache, apt: debian.Apt, kernels: list[matrix.Kernel]
                    ) -> dict[str, debian.KernelPackage]:
    found = {}
    for k in kernels:
        key = f"kernel {k.meta}/{k.suite} {apt.release_digest([k.suite])}"
        known = cache.recall(key)
        if isinstance(known, list) and len(known) == 2:
            found[k.label] = debian.KernelPackage(str(known[0]), str(known[1]))
            continue
        package = apt.kernel_package(k.meta, k.suite)
        cache.remember(key, [package.name, package.version])
        found[k.label] = package
    return found


def kernel_btfs(cache: layers.Cache, kernels: list[matrix.Kernel], packages: dict[str, debian.KernelPackage],
                files: dict[str, tuple[Path, Path]]) -> dict[str, btfhub.KernelBtf]:
    """Each kernel's own BTF, from its vmlinuz (for --btf rows and ecc --btfgen)."""
    out = {}
    for k in kernels:
        try:
            out[k.label] = btfhub.KernelBtf(cache, packages[k.label].slug, k.suite, files[k.label][0])
        except btfhub.ExtractError as e:
            raise CommandError(f"kernel {k.label}: cannot extract its BTF: {e}") from None
    return out


def refresh(apt: debian.Apt, offline: bool) -> None:
    have_lists = any((apt.dir / "lists").glob("*_InRelease"))
    if offline and have_lists:
        return
    try:
        apt.update()
    except CommandError as e:
        if not have_lists:
            raise
        log(f"apt-get update failed ({e}); going on with the cached lists")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = matrix.validate()
    missing = [f"{tool} (apt package {pkg})" for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None]
    if problems or missing:
        for p in problems:
            log(f"matrix: {p}")
        if missing:
            log(f"missing host tools: {', '.join(missing)}")
        return 2
    kernels = [k for k in matrix.KERNELS if not args.kernel or k.label in args.kernel]
    wanted = args.only or ["*"]
    programs = [p for p in matrix.PROGRAMS if any(fnmatch.fnmatchcase(p.name, o) for o in wanted)]
    if not kernels or not programs:
        log("nothing to run: check --kernel and --only against the table")
        return 2
    on_terminate(lambda: log("terminated; stopping"))
    cache = layers.Cache(Path(os.environ.get("PYEUNOMIA_KERNEL_CACHE", layers.DEFAULT_CACHE)))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        with cache.locked():
            return run_matrix(args, cache, kernels, programs, started)
    except KeyboardInterrupt:
        log("interrupted; qemu stopped and temporary files removed")
        return 130
    except CommandError as e:
        log(str(e))
        return 1


def run_matrix(args: argparse.Namespace, cache: layers.Cache, kernels: list[matrix.Kernel],
               programs: list[matrix.Program], started: float) -> int:
    mirror = debian.system_mirror()
    apt = debian.Apt(cache.root / "apt", mirror, [k.suite for k in kernels] + [debian.ROOT_SUITE])
    refresh(apt, args.offline)
    packages = kernel_packages(cache, apt, kernels)
    base = layers.base_layer(cache, apt)
    wheel, install = layers.project_layers(cache, REPO)
    problems = debian.python_deps_problems(layers.wheel_requires(wheel), base.with_suffix(".txt").read_text().split())
    if problems:  # the guest would run the project on dependencies older than it says it needs
        raise SystemExit("the guest's Debian packages do not meet pyproject.toml's dependencies:\n  "
                         + "\n  ".join(problems))
    remove_tree(cache.root / "pydeps")  # the PyPI layer of earlier versions of this harness
    roots = Roots(REPO, args.examples, PACKAGE_DIR / "programs")
    modules = sorted({m for p in programs for m in p.modules})
    kernel_files = {k.label: layers.kernel_files(cache, apt, packages[k.label], modules) for k in kernels}
    kernel_btf = kernel_btfs(cache, kernels, packages, kernel_files)
    archive = btfhub.archive(cache, list(kernel_btf.values()))  # for ecc --btfgen: the kernels of this run
    built = build_all(programs, roots, find_ecc(args.ecc), cache, prune_others=programs == list(matrix.PROGRAMS),
                      btfhub=archive)
    runnable = [p for p in programs if not built[p.name].error]
    extra = payload(runnable, built)
    prepared = time.monotonic() - started
    log(f"prepared in {prepared:.1f} s; booting {', '.join(k.label for k in kernels)}")

    cells: dict[tuple[str, str], results.Cell] = {}
    report: dict[str, Any] = {"prepare_seconds": round(prepared, 1), "kernels": {}}
    header = []
    for k in kernels:
        package = packages[k.label]
        vmlinuz, modlayer = kernel_files[k.label]
        run_dir = cache.tempdir(f"guest-{k.label}")
        initrd = run_dir / "initrd.cpio"
        concatenate([base, install, modlayer, kernel_btf[k.label].layer()], extra, initrd)
        console = args.out / f"{k.label}.console.log"
        boot = qemu.Boot(k.label, vmlinuz, initrd, console, args.out / f"{k.label}.results.log",
                         {p.name: p.timeout for p in runnable}, args.memory, args.cpus)

        def show(record: dict[str, Any], label: str = k.label) -> None:
            if record.get("event") == "result":
                log(f"[{label}] {record.get('check')}: {record.get('status')} ({record.get('seconds')} s)"
                    + (f": {record.get('reason')}" if record.get("reason") else ""))

        outcome = qemu.run_guest(boot, show)
        remove_tree(run_dir)
        by_check = results.results_by_check(outcome.records)
        stuck = results.last_started(outcome.records)
        for p in programs:
            if built[p.name].error:
                cells[(p.name, k.label)] = results.Cell(results.FAILED, built[p.name].error)
                continue
            why = outcome.problem if p.name == stuck or not stuck else "not reached: the guest ended earlier"
            cells[(p.name, k.label)] = results.classify(p, k.label, by_check.get(p.name), why)
        line = (f"{k.label}: {package.name} {package.version}: {outcome.seconds:.0f} s in the guest"
                f" (report from /init after {outcome.boot_seconds} s)")
        header.append(line)
        log(line + (f"; {outcome.problem}" if outcome.problem else ""))
        report["kernels"][k.label] = {"package": package.name, "version": package.version,
                                      "seconds": outcome.seconds, "boot_seconds": outcome.boot_seconds,
                                      "problem": outcome.problem, "records": outcome.records}
    if len(programs) == len(matrix.PROGRAMS) and len(kernels) == len(matrix.KERNELS):
        layers.prune_kernels(cache, list(packages.values()))
        btfhub.prune_kernels(cache, [p.slug for p in packages.values()])
        cache.forget_unused()
    total = time.monotonic() - started
    header += [f"wall time {total:.0f} s (preparation {prepared:.0f} s); cache {cache.root}", ""]
    table = results.render(programs, [k.label for k in kernels], cells, header)
    counts = results.summary(cells)
    table += f"\n{counts['ran']} ran, {counts['unsupported']} expected-unsupported, {counts['FAILED']} failed\n"
    sys.stdout.write("\n" + table)
    (args.out / "matrix.txt").write_text(table)
    report["cells"] = {f"{k} {n}": vars(c) for (n, k), c in cells.items()}
    report["wall_seconds"] = round(total, 1)
    (args.out / "matrix.json").write_text(json.dumps(report, indent=1))
    log(f"table written to {args.out / 'matrix.txt'}")
    return 1 if counts[results.FAILED] else 0
