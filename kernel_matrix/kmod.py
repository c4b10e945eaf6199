"""Kernel modules from a kernel package, with their dependencies, in load order.

The guest's root has no kmod and no modules.dep; the few modules checks need
(loop and md for mdflush, the clsact qdisc for tc) go into the initramfs
uncompressed and /init loads them with busybox insmod in the order written to
/kmx/modules/order. Dependencies come from each module's own `.modinfo`.
"""

from __future__ import annotations

import gzip
import lzma
from collections.abc import Iterable
from pathlib import Path


def canonical(name: str) -> str:
    """Module names treat '-' and '_' alike (md-mod.ko is md_mod)."""
    return name.replace("-", "_")


def stem(path: Path) -> str:
    name = path.name
    for suffix in (".xz", ".gz", ".zst"):
        name = name.removesuffix(suffix)
    return canonical(name.removesuffix(".ko"))


def read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        raise ValueError(f"{path.name}: zstd-compressed modules are not supported")
    return data


def depends(image: bytes) -> list[str]:
    """The `depends=` field of a module's .modinfo (NUL-separated key=value strings)."""
    for field in image.split(b"\0"):
        if field.startswith(b"depends="):
            value = field[len(b"depends="):].decode()
            return [canonical(d) for d in value.split(",") if d]
    return []


def load_order(wanted: Iterable[str], deps: dict[str, list[str]]) -> list[str]:
    """Dependencies first, each module once; unknown names raise KeyError."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"module dependency loop at {name}")
        visiting.add(name)
        for dep in deps[name]:
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(canonical(name))
    return order


def builtin_names(tree: Path) -> set[str]:
    found = set()
    for listing in tree.glob("lib/modules/*/modules.builtin"):
        found |= {stem(Path(line.strip())) for line in listing.read_text().splitlines() if line.strip()}
    return found


def collect(tree: Path, wanted: Iterable[str]) -> tuple[list[str], dict[str, bytes], list[str]]:
    """From an unpacked kernel package: (load order, name -> uncompressed image,
    names built into the kernel and so not needed)."""
    files = {stem(p): p for p in tree.glob("lib/modules/*/kernel/**/*.ko*")}
    builtin = builtin_names(tree)
    images: dict[str, bytes] = {}
    deps: dict[str, list[str]] = {}
    skipped: list[str] = []
    todo = [canonical(w) for w in wanted]
    while todo:
        name = todo.pop()
        if name in deps:
            continue
        if name not in files:
            if name in builtin:
                skipped.append(name)
                deps[name] = []
                continue
            raise KeyError(f"module {name} is neither in the kernel package nor built in")
        images[name] = read_module(files[name])
        deps[name] = depends(images[name])
        todo += deps[name]
    order = [m for m in load_order(wanted, deps) if m in images]
    return order, images, sorted(skipped)
