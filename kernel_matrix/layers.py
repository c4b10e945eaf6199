"""The cache folder and the initramfs layers kept in it.

A guest's initramfs is the concatenation of cpio archives, from the slowest to
make to the quickest:

    base/KEY.cpio      the Debian root (mmdebstrap), the project's Python dependencies
                       included, KEY from the exact package versions
    wheels/KEY/        the project's wheel (installed --no-deps) as a layer, KEY from the source tree
    kernels/PKG_VER/   vmlinuz and a layer of the modules the checks load
    (per run)          /init, the guest runner, the plan and the programs built on the host

Each cached file is written under a temporary name and renamed, so an
interrupted run never leaves a half file that a later run would trust; stale
entries (keys no longer wanted) are removed when their replacement is made.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import cpio, debian, kmod
from .procs import log, remove_tree, run

DEFAULT_CACHE = Path("/var/cache/pyeunomia/kernels")
PY_TARGET = "usr/local/lib/python3.11/dist-packages"  # the guest's (Debian bookworm's) site directory


class Cache:
    """The folder named by PYEUNOMIA_KERNEL_CACHE (default /var/cache/pyeunomia/kernels)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.tmp = root / "tmp"
        self.memo_path = root / "memo.json"
        self.used: set[str] = set()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One run at a time per cache; a second waits. Leftovers of a run that
        was killed outright (SIGKILL) are swept once the lock is ours."""
        with open(self.root / "lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f"waiting for another run using {self.root}")
                fcntl.flock(f, fcntl.LOCK_EX)
            remove_tree(self.tmp)
            self.tmp.mkdir()
            try:
                yield
            finally:
                remove_tree(self.tmp)

    def tempdir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.tmp))

    def recall(self, key: str) -> object:
        self.used.add(key)
        return self.memo().get(key)

    def forget_unused(self) -> None:
        """Drop what this run did not look up (answers for lists long replaced)."""
        memo = self.memo()
        kept = {k: v for k, v in memo.items() if k in self.used}
        if kept != memo:
            publish_bytes(self.memo_path, json.dumps(kept, indent=1, sort_keys=True).encode())

    def memo(self) -> dict[str, object]:
        try:
            value = json.loads(self.memo_path.read_text())
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}

    def remember(self, key: str, value: object) -> None:
        memo = self.memo()
        memo[key] = value
        self.used.add(key)
        publish_bytes(self.memo_path, json.dumps(memo, indent=1, sort_keys=True).encode())


def publish_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + f".part{os.getpid()}")
    part.write_bytes(data)
    part.replace(path)


def prune(folder: Path, keep: set[str]) -> None:
    """Remove the entries of `folder` whose names are not kept."""
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name not in keep:
                remove_tree(entry)


def tree_digest(paths: Sequence[Path], base: Path) -> str:
    """A digest of files (and of every file below folders), names included."""
    h = hashlib.sha256()
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc" or ".egg-info" in str(p):
                continue
            h.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:20]


# -- the Debian root -----------------------------------------------------------

def base_layer(cache: Cache, apt: debian.Apt) -> Path:
    digest = apt.release_digest([debian.ROOT_SUITE])
    memo_key = f"root {digest} {debian.ROOT_INCLUDE}"
    key = cache.recall(memo_key)
    if not isinstance(key, str) or not (cache.root / "base" / f"{key}.txt").exists():  # host.py checks them
        versions = apt.root_versions(debian.ROOT_INCLUDE)
        key = debian.root_key(versions)
        cache.remember(memo_key, key)
        publish_bytes(cache.root / "base" / f"{key}.txt", ("\n".join(versions) + "\n").encode())
    path = cache.root / "base" / f"{key}.cpio"
    if path.exists():
        return path
    log(f"building the guest root (mmdebstrap {debian.ROOT_SUITE}), key {key}")
    work = cache.tempdir("root")
    try:
        target = work / "root"
        debian.build_root(apt.mirror, target)
        with open(path.with_suffix(".cpio.part"), "wb") as f:
            w = cpio.Writer(f)
            cpio.add_tree(w, target, skip=("dev", "proc", "sys", "run", "tmp", "var/cache/apt", "var/lib/apt/lists"))
            for d in ("dev", "proc", "sys", "run", "tmp"):
                w.dir(d, 0o1777 if d == "tmp" else 0o755)
            w.close()
        path.with_suffix(".cpio.part").replace(path)
    finally:
        remove_tree(work)
    prune(path.parent, {path.name, f"{key}.txt"})
    return path


# -- Python: the project's wheel (its dependencies are Debian's, in the root) -------

def wheel_requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return sorted(line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("Requires-Dist:") and "extra ==" not in line)


def site_layer(source: Path, out: Path) -> None:
    """Files pip put in `source` as a layer: bin/ to /usr/local/bin (with the
    guest's interpreter in the #! line instead of ours), the rest to the guest's
    site directory, bytecode compiled in a way file times cannot invalidate."""
    run([sys.executable, "-m", "compileall", "-q", "-f", "--invalidation-mode", "unchecked-hash",
         "-d", "/" + PY_TARGET, str(source)], quiet=True)
    with open(out.with_suffix(".part"), "wb") as f:
        w = cpio.Writer(f)
        bindir = source / "bin"
        if bindir.is_dir():
            for script in sorted(bindir.iterdir()):
                data = script.read_bytes()
                if data.startswith(b"#!"):
                    data = b"#!/usr/bin/python3" + data[data.index(b"\n"):]
                w.parents(f"usr/local/bin/{script.name}")
                w.file(f"usr/local/bin/{script.name}", data, 0o755)
            remove_tree(bindir)
        w.parents(PY_TARGET + "/x")
        w.dir(PY_TARGET)
        cpio.add_tree(w, source, PY_TARGET)
        w.close()
    out.with_suffix(".part").replace(out)


def project_layers(cache: Cache, repo: Path) -> tuple[Path, Path]:
    """(the wheel, it installed as a layer), rebuilt only when the source changes."""
    key = tree_digest([repo / "pyproject.toml", repo / "README.md", repo / "src"], repo)
    folder = cache.root / "wheels" / key
    layer = folder / "install.cpio"
    wheels = sorted(folder.glob("*.whl"))
    if wheels and layer.exists():
        return wheels[-1], layer
    log("building the project's wheel")
    work = cache.tempdir("wheel")
    try:
        copy = work / "src"  # a copy: building in the checkout would leave build/ and egg-info behind
        copy.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(repo / name, copy / name)
        shutil.copytree(repo / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
             "-w", str(work / "out"), str(copy)], quiet=True)
        wheel = next((work / "out").glob("*.whl"))
        run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
             "--no-compile", "--target", str(work / "t"), str(wheel)], quiet=True)
        folder.mkdir(parents=True, exist_ok=True)
        site_layer(work / "t", folder / "install.cpio")
        shutil.copy(wheel, folder / wheel.name)
    finally:
        remove_tree(work)
    prune(folder.parent, {key})
    return folder / wheel.name, layer


# -- kernels -----------------------------------------------------------------------

def kernel_files(cache: Cache, apt: debian.Apt, package: debian.KernelPackage, modules: Sequence[str]
                 ) -> tuple[Path, Path]:
    """(vmlinuz, modules layer) for one kernel package, downloaded once."""
    folder = cache.root / "kernels" / package.slug
    modkey = hashlib.sha256(" ".join(sorted(set(modules))).encode()).hexdigest()[:12]
    vmlinuz, layer = folder / "vmlinuz", folder / f"modules-{modkey}.cpio"
    if vmlinuz.exists() and layer.exists():
        return vmlinuz, layer
    debs = cache.root / "debs"
    debs.mkdir(exist_ok=True)
    deb = debs / f"{package.name}_{package.version.replace(':', '%3a')}_amd64.deb"
    if not deb.exists():
        log(f"downloading {package.name} {package.version}")
        got = apt.download([package], cache.tempdir("deb"))
        deb = debs / got[0].name
        shutil.move(got[0], deb)
    work = cache.tempdir("kernel")
    try:
        debian.unpack_deb(deb, work)
        folder.mkdir(parents=True, exist_ok=True)
        image = next(work.glob("boot/vmlinuz-*"))
        for config in work.glob("boot/config-*"):
            shutil.copy(config, folder / "config")
        order, images, builtin = kmod.collect(work, modules)
        buf = io.BytesIO()
        w = cpio.Writer(buf)
        w.dir("kmx")
        w.dir("kmx/modules")
        for name in order:
            w.file(f"kmx/modules/{name}.ko", images[name])
        w.file("kmx/modules/order", "".join(f"{n}.ko\n" for n in order).encode())
        w.close()
        publish_bytes(layer, buf.getvalue())
        shutil.copy(image, folder / "vmlinuz.part")
        (folder / "vmlinuz.part").replace(vmlinuz)
        if builtin:
            log(f"{package.name}: built in, not loaded: {', '.join(builtin)}")
    finally:
        remove_tree(work)
    prune(folder, {"vmlinuz", "config", layer.name})
    return vmlinuz, layer


def prune_kernels(cache: Cache, keep: Sequence[debian.KernelPackage]) -> None:
    prune(cache.root / "kernels", {p.slug for p in keep})
    names = {f"{p.name}_" for p in keep}
    debs = cache.root / "debs"
    if debs.is_dir():
        for deb in debs.iterdir():
            if not any(deb.name.startswith(n) for n in names):
                deb.unlink()
