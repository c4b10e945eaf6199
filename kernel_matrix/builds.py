"""Building the matrix's programs on the host, once for every kernel.

Packages are compiled with this project's `ecc` (the console script next to
the interpreter running the harness, unless --ecc says otherwise) against the
host kernel's BTF: the guests then prove they run unchanged elsewhere. A build
is cached under a key of everything that shapes it (its sources, the project's
source tree, the host's BTF and toolchain), so a warm run compiles nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import debian
from .layers import Cache, prune, publish_bytes, tree_digest
from .matrix import Build, Program
from .procs import CommandError, run

HOST_BTF = Path("/sys/kernel/btf/vmlinux")


@dataclass(frozen=True)
class Roots:
    """Where `repo:`, `examples:` and `programs:` paths point."""

    repo: Path
    examples: Path
    programs: Path

    def path(self, spec: str) -> Path:
        kind, _, rest = spec.partition(":")
        base = {"repo": self.repo, "examples": self.examples, "programs": self.programs}.get(kind)
        if base is None:
            raise ValueError(f"{spec}: a path starts with repo:, examples: or programs:")
        return base / rest


@dataclass
class Built:
    """What one program's build put where in the guest, or why it failed."""

    files: dict[str, bytes]
    error: str = ""


def build_key(build: Build, roots: Roots, toolchain: str, btfhub: Path | None = None) -> str:
    source = roots.path(build.source)
    inputs = [source.parent] if build.kind == "ecc" else [source]
    if build.header:
        inputs.append(roots.path(build.header))
    if build.cc:
        inputs.append(roots.path(build.cc[0]))
    archive = btfhub.name if build.btfgen and btfhub is not None else ""  # its folder is named by its content
    h = hashlib.sha256(f"{build}\n{toolchain}\n{archive}\n".encode())
    h.update(tree_digest(inputs, Path("/")).encode())
    return h.hexdigest()[:20]


def toolchain_identity(roots: Roots, ecc: str) -> str:
    """The ecc that compiles (the project's source) and what it compiles against."""
    btf = hashlib.sha256(HOST_BTF.read_bytes()).hexdigest()[:16] if HOST_BTF.exists() else "no-btf"
    src = tree_digest([roots.repo / "src"], roots.repo)
    return (f"ecc={ecc} src={src} btf={btf}\n" + private_toolchain(ecc)
            + debian.tool_versions("clang", "llvm", "libbpf-dev", "bpftool", "gcc"))


def private_toolchain(ecc: str) -> str:
    """The libbpf headers and bpftool of `make toolchain` that `ecc` compiles
    with, found as ecc finds them (src/pyeunomia/compiler/private.py):
    $PYEUNOMIA_TOOLCHAIN, else the link in ecc's venv. Its manifest names the
    packages' versions and hashes."""
    given = os.environ.get("PYEUNOMIA_TOOLCHAIN", "")
    if given == "system":
        return "toolchain=system\n"
    prefix = Path(given) if given else Path(ecc).parent.parent / "share" / "pyeunomia" / "toolchain"
    try:
        return f"toolchain={prefix.resolve()}\n{(prefix / 'toolchain.json').read_text()}"
    except OSError:
        return "toolchain=system\n"


def build_one(program: Program, roots: Roots, ecc: str, out: Path, btfhub: Path | None = None) -> dict[str, bytes]:
    build = program.build
    assert build is not None
    guest = program.package_file
    files: dict[str, bytes] = {}
    source = roots.path(build.source)
    if build.kind == "copy":
        files[guest] = source.read_bytes()
    else:
        argv = [ecc, "-o", str(out), str(source)]
        if build.header:
            argv.append(str(roots.path(build.header)))
        if build.btfgen:
            if btfhub is None:
                raise ValueError(f"{program.name}: --btfgen without an archive of the run's kernels")
            argv += ["--btfgen", "--btfhub-archive", str(btfhub)]
        run(argv, quiet=True)
        files[guest] = (out / guest.rsplit("/", 1)[-1]).read_bytes()
    if build.cc:
        binary = out / "cc.out"
        run(["gcc", "-O2", "-Wall", "-o", str(binary), str(roots.path(build.cc[0]))], quiet=True)
        files[build.cc[1]] = binary.read_bytes()
    return files


def build_all(programs: list[Program], roots: Roots, ecc: str, cache: Cache, prune_others: bool = False,
              btfhub: Path | None = None) -> dict[str, Built]:
    """Build what is not cached; with `prune_others`, forget builds the table no longer has.
    `btfhub`: the archive of the run's kernels for `ecc --btfgen` builds."""
    toolchain = toolchain_identity(roots, ecc)
    results: dict[str, Built] = {}
    keep: set[str] = set()
    for program in programs:
        if program.build is None:
            results[program.name] = Built({})
            continue
        key = build_key(program.build, roots, toolchain, btfhub)
        keep.add(key)
        folder = cache.root / "builds" / key
        if folder.is_dir():
            found = {"/" + str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
            results[program.name] = Built(_named_for(program, found))
            continue
        work = cache.tempdir("build")
        try:
            files = build_one(program, roots, ecc, work, btfhub)
        except (CommandError, OSError, ValueError) as e:
            results[program.name] = Built({}, f"host build failed: {e}")
            continue
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for guest_path, data in _neutral(program, files).items():
            publish_bytes(folder.with_name(key + ".part") / guest_path.lstrip("/"), data)
        folder.with_name(key + ".part").replace(folder)
        results[program.name] = Built(files)
    if prune_others:
        prune(cache.root / "builds", keep)
    return results


# Rows with the same build share its cache entry: the package is kept there
# under this folder, not under the first row's guest path.
_PACKAGE_SLOT = "/package/"


def _neutral(program: Program, files: dict[str, bytes]) -> dict[str, bytes]:
    mine = program.package_file
    return {(_PACKAGE_SLOT + path.rsplit("/", 1)[-1] if path == mine else path): data for path, data in files.items()}


def _named_for(program: Program, files: dict[str, bytes]) -> dict[str, bytes]:
    return {(program.package_file if path.startswith(_PACKAGE_SLOT) else path): data for path, data in files.items()}
