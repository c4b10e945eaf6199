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
"""

from __future__ import annotations

import ast
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
    "containers": {"format", "files", "kernel"},  # cgroup id -> container; filter.py fills a program's map
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


def imports(path: Path, tree: ast.Module) -> list[tuple[str, bool]]:
    """(absolute module imported, inside a function?) for every import."""
    package = ".".join(("pyeunomia", *path.relative_to(SRC).parent.parts))
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
