"""The layout's rules, checked on the source: each folder is one concept and
imports flow one way (see README, Layout).

    format/  decoders/   pure: bytes and values in, values out
    kernel/              the only ctypes; the libbpf binding, feature probes, process policy
    runner/              load, attach, read; reaches the kernel for everyone else
    output/              presentation       compiler/  ecc        exporter/  metrics
    cli/                 every console entry point

Imports are read from the syntax tree (function-level ones included), so a
lazy import cannot hide an edge; cross-layer imports inside functions are
allowed only in cli/, the entry points, where they keep start-up lean.
Also checked: one module imports ctypes, every console script is in cli/,
tools/ holds no Python, the pure modules load no binding, one decoder
registry, tests/ mirrors src/, and modules stay under ~500 lines.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pyeunomia"
ROOT_MODULES = {"errors", "files", "cache", "source", "external", "oci"}  # shared by several layers

# layer -> the layers it may import (besides itself, errors and the standard library)
ALLOWED = {
    "format": set(),
    "decoders": {"format", "files", "containers"},  # container decoders ask the resolver
    "converters": {"format", "decoders"},
    "kernel": set(),
    "files": {"format"},
    "cache": {"files"},
    "external": set(),
    "source": {"format", "files", "oci"},
    "oci": {"format", "files", "cache"},  # registry references; the oras client inside, imported when used
    "containers": {"format", "files", "runner"},  # cgroup id -> container; filter.py fills a program's map
    "runner": {"format", "kernel", "files", "cache", "external", "source"},
    "output": {"format", "decoders"},
    "compiler": {"format", "decoders", "files", "cache", "external", "converters"},  # decoders: ecc checks @column's
    "exporter": {"format", "decoders", "runner", "output", "source", "files", "converters"},
    "cli": {"format", "decoders", "kernel", "runner", "output", "compiler", "exporter", "source", "files", "cache",
            "external", "converters", "oci", "containers"},
    "__init__": {"runner", "output", "source", "format", "api"},
    "api": {"runner", "output", "source", "format"},
}


# Allowed edges taken inside a function on purpose, with why: start-up pays only when it is used.
LAZY = {
    ("decoders", "containers"): "the resolver (json, subprocess, /proc readers) costs ~15 ms to import; "
                                "only a container decoder in use pays it",
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    if len(rel.parts) == 1:
        return rel.stem
    return rel.parts[0]


@cache
def modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(SRC.rglob("*.py"))]


def imports(path: Path, tree: ast.Module, root: Path = SRC) -> list[tuple[str, bool]]:
    """(absolute module imported, inside a function?) for every import."""
    package = ".".join((root.name, *path.relative_to(root).parent.parts))
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                out.extend((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                out.append((name, in_function))
                out.extend((f"{name}.{a.name}", in_function) for a in child.names)
            visit(child, nested)
    visit(tree, False)
    return out


def target_layer(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "pyeunomia" or len(parts) == 1:
        return None
    return parts[1]


def violations() -> list[str]:
    found = []
    known = {layer_of(p) for p, _ in modules()}
    for path, tree in modules():
        layer = layer_of(path)
        for name, in_function in imports(path, tree):
            target = target_layer(name)
            if target is None or target not in known or target in (layer, "errors"):
                continue
            rel = path.relative_to(SRC.parent)
            if target not in ALLOWED.get(layer, set()):
                found.append(f"{rel}: {layer}/ imports {name}")
            elif in_function and layer != "cli" and (layer, target) not in LAZY:
                found.append(f"{rel}: imports {name} inside a function (a hidden cross-layer edge)")
    return sorted(set(found))


def test_imports_flow_one_way():
    assert violations() == []


def test_exactly_one_module_imports_ctypes():
    users = sorted(str(p.relative_to(SRC)) for p, tree in modules()
                   if any(n == "ctypes" or n.startswith("ctypes.") for n, _ in imports(p, tree)))
    assert users == ["kernel/libbpf.py"]


def test_tools_hold_only_kernel_side_sources_and_packages():
    tools = SRC / "tools"
    python = [p for p in tools.rglob("*.py") if p.name != "__init__.py"]
    assert python == [], "a tool is its kernel-side program: its Python belongs in the engine"


def test_every_console_script_is_in_cli():
    scripts = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts and all(target.startswith("pyeunomia.cli.") for target in scripts.values()), scripts
    for target in scripts.values():  # and each names a function there
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function, None)), target


PURE = sorted(f"pyeunomia.{'.'.join(p.relative_to(SRC).with_suffix('').parts)}".removesuffix(".__init__")
              for p in SRC.rglob("*.py") if layer_of(p) in ("format", "decoders"))


@pytest.mark.parametrize("group", ["format", "decoders", "exporter.config"])
def test_pure_modules_load_no_binding(group: str):
    """Importing the pure core (and the exporter's config and plan) in a
    fresh interpreter loads neither ctypes, nor the binding, nor
    prometheus_client."""
    names = [m for m in PURE if m.startswith(f"pyeunomia.{group}")] if group != "exporter.config" else \
        ["pyeunomia.exporter.config", "pyeunomia.exporter.plan", "pyeunomia.exporter.document"]
    code = ("import importlib, sys\n"
            f"for m in {names!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in ('ctypes', 'pyeunomia.kernel.libbpf', 'prometheus_client') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert names and done.stdout.strip() == "[]", (names, done.stdout, done.stderr)


TESTS = SRC.parents[1] / "tests"
# Test folders that are no layer: whole-program runs, generated inputs, the kernel matrix's own code.
NOT_LAYERS = {"e2e", "property", "fuzz", "corpus", "fixtures", "kernel_matrix"}
# Tests of a layer's command that read what it wrote with another layer's modules.
RUN_THE_COMMAND = {"compiler/test_build.py", "compiler/test_exportchoice.py"}  # run ecc, read with format/


def test_tests_mirror_src():
    """tests/LAYER/ exists only for a layer of src/pyeunomia/, and a test
    there that imports pyeunomia imports that layer: a test moves with its
    module (tests that run a command, such as ecc's, import none)."""
    layers = {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("__")}
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    assert folders - NOT_LAYERS <= layers, sorted(folders - NOT_LAYERS - layers)
    misplaced = []
    for path in sorted(TESTS.glob("*/test_*.py")):
        layer = path.parent.name
        if layer in NOT_LAYERS:
            continue
        names = {target_layer(n) for n, _ in imports(path, ast.parse(path.read_text()), TESTS)}
        names.discard(None)
        if names and layer not in names and str(path.relative_to(TESTS)) not in RUN_THE_COMMAND:
            misplaced.append(f"{path.relative_to(TESTS)} tests {sorted(names)}")
    assert misplaced == []


MAX_LINES = 500
# Modules over MAX_LINES, each with the size it may not grow past and why it is not split yet.
OVERSIZE = {
    "kernel/libbpf.py": (811, "the one module that may import ctypes: the binding and the libc calls "
                              "process policy needs cannot move out without a second ctypes module"),
    "exporter/httpserver.py": (606, "connections, deadlines and eviction share one selector loop's state"),  # main: 606
    "format/package.py": (505, "at the limit: the package format's one parser (meta, doc, run keys)"),
}


def test_modules_stay_small():
    """A module is at most ~500 lines: a listed exception may not grow, and
    leaves the list once it is back under."""
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p, _ in modules()}
    over = {m: n for m, n in sizes.items() if n > MAX_LINES and m not in OVERSIZE}
    grown = {m: (sizes.get(m), cap) for m, (cap, _) in OVERSIZE.items() if sizes.get(m, 0) > cap}
    back_under = [m for m in OVERSIZE if sizes.get(m, 0) <= MAX_LINES]
    assert (over, grown, back_under) == ({}, {}, []), (over, grown, back_under)


def test_one_decoder_registry():
    """Every value decoder is made in decoders/ and listed in its one table
    (decoders.DECODERS), which output and the exporter both read: no module
    elsewhere makes a DecoderType, and none in decoders/ is left out."""
    from pyeunomia import decoders

    def makes_a_decoder(tree: ast.Module) -> bool:
        return any(isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == "DecoderType"
                   for n in ast.walk(tree))

    made_elsewhere = sorted(str(p.relative_to(SRC)) for p, tree in modules()
                            if layer_of(p) != "decoders" and makes_a_decoder(tree))
    defined = set()
    for path in sorted((SRC / "decoders").glob("*.py")):
        if path.stem != "__init__":
            module = importlib.import_module(f"pyeunomia.decoders.{path.stem}")
            defined.update([module.DECODER] if hasattr(module, "DECODER") else getattr(module, "DECODERS", ()))
    assert len(defined) > 20 and made_elsewhere == [] and defined - set(decoders.DECODERS.values()) == set()
    assert [n for n in decoders.DECODERS if decoders.DECODERS[n].name != n] == []  # each name finds its own
    readers = {str(p.relative_to(SRC)) for p, tree in modules()
               if any(n == "pyeunomia.decoders.DECODERS" for n, _ in imports(p, tree))}
    assert {"output/colrows.py", "exporter/labels.py"} <= readers, readers
