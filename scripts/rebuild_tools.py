"""Rebuild the packages shipped in src/pyeunomia/tools/*/ with ecc, and record
what they were built from in build.json: the sources' and the kernel BTF's
SHA-256. The test of the shipped packages compares against both.

    .venv/bin/python scripts/rebuild_tools.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "src" / "pyeunomia" / "tools"
KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sources_of(tool: Path) -> list[Path]:
    return sorted(tool.glob("*.bpf.c")) + sorted(tool.glob("*.bpf.h"))


def record(tool: Path) -> dict[str, object]:
    return {"sources": {p.name: sha256(p) for p in sources_of(tool)}, "kernel_btf": sha256(KERNEL_BTF)}


def build(tool: Path, out: Path) -> Path:
    """ecc on the tool's sources; returns the package.json it wrote."""
    source, *header = sources_of(tool)
    subprocess.run([sys.executable, "-m", "pyeunomia.cli.ecc", str(source), *map(str, header), "-o", str(out)],
                   check=True, capture_output=True)
    return out / "package.json"


def main() -> None:
    for tool in sorted(p for p in TOOLS.iterdir() if p.is_dir() and sources_of(p)):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(build(tool, Path(tmp)), tool / "package.json")
        (tool / "build.json").write_text(json.dumps(record(tool), indent=2, sort_keys=True) + "\n")
        print(f"rebuilt {tool.name}")


if __name__ == "__main__":
    main()
