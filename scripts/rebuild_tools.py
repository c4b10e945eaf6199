"""Rebuild the packages shipped in src/pyeunomia/tools/*/ with ecc, and record
what they were built from in build.json: the sources' and the kernel BTF's
SHA-256. The test of the shipped packages compares against both.

A tool's sources are its own NAME.bpf.c and headers plus the shared headers
of tools/include/ that it includes (`#include "../include/X.bpf.h"`): a
change to a shared header makes every tool that includes it stale.

    .venv/bin/python scripts/rebuild_tools.py
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "src" / "pyeunomia" / "tools"
KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SHARED = TOOLS / "include"
_SHARED_INCLUDE = re.compile(rb'^\s*#\s*include\s+"\.\./include/([A-Za-z0-9_.-]+)"', re.M)


def sources_of(tool: Path) -> list[Path]:
    """The tool's own sources, NAME.bpf.c first: what ecc is given."""
    return sorted(tool.glob("*.bpf.c")) + sorted(tool.glob("*.bpf.h"))


def tool_dirs() -> list[Path]:
    """Every tool: a folder with a .bpf.c (tools/include holds only headers)."""
    return sorted(p for p in TOOLS.iterdir() if p.is_dir() and any(p.glob("*.bpf.c")))


def shared_headers(tool: Path) -> list[Path]:
    """The tools/include headers the tool's sources include (one level: the
    shared headers include none of their own)."""
    names = {m.group(1).decode() for p in sources_of(tool) for m in _SHARED_INCLUDE.finditer(p.read_bytes())}
    return [SHARED / n for n in sorted(names)]


def record(tool: Path) -> dict[str, object]:
    sources = {p.name: sha256(p) for p in sources_of(tool)}
    sources.update({f"include/{p.name}": sha256(p) for p in shared_headers(tool)})
    return {"sources": sources, "kernel_btf": sha256(KERNEL_BTF)}


def build(tool: Path, out: Path) -> Path:
    """ecc on the tool's sources; returns the package.json it wrote."""
    source, *header = sources_of(tool)
    subprocess.run([sys.executable, "-m", "pyeunomia.cli.ecc", str(source), *map(str, header), "-o", str(out)],
                   check=True, capture_output=True)
    return out / "package.json"


def main() -> None:
    only = set(sys.argv[1:])
    for tool in tool_dirs():
        if only and tool.name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(build(tool, Path(tmp)), tool / "package.json")
        (tool / "build.json").write_text(json.dumps(record(tool), indent=2, sort_keys=True) + "\n")
        print(f"rebuilt {tool.name}")


if __name__ == "__main__":
    main()
