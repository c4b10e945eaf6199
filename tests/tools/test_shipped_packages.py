"""The packages shipped in pyeunomia/tools are built from the sources next to them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from ..conftest import ROOT, require

spec = importlib.util.spec_from_file_location("rebuild_tools", ROOT / "scripts" / "rebuild_tools.py")
assert spec is not None and spec.loader is not None
rebuild = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rebuild)
TOOLS = rebuild.tool_dirs()


@pytest.mark.parametrize("tool", TOOLS, ids=lambda p: p.name)
def test_package_is_current(tool: Path):
    recorded = json.loads((tool / "build.json").read_text())
    assert recorded["sources"] == rebuild.record(tool)["sources"], (
        f"{tool.name}'s sources changed since its package was built: run scripts/rebuild_tools.py")
    for name in ("clang", "llvm-strip", "bpftool"):
        require(shutil.which(name) is not None, f"{name} is not installed (make test installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = rebuild.build(tool, Path(tmp)).read_bytes()
    shipped = (tool / "package.json").read_bytes()
    if recorded["kernel_btf"] == rebuild.sha256(rebuild.KERNEL_BTF):
        assert fresh == shipped, f"rebuilding {tool.name} gives another package: run scripts/rebuild_tools.py"
    else:
        # Built against another kernel's BTF (vmlinux.h): CO-RE offsets in the
        # code differ, the metadata may not.
        assert _without_type_ids(json.loads(fresh)["meta"]) == _without_type_ids(json.loads(shipped)["meta"])


def _without_type_ids(meta: dict) -> dict:
    """Export types' BTF ids depend on how many kernel types the object uses."""
    return {**meta, "export_types": [{k: v for k, v in t.items() if k != "type_id"} for t in meta["export_types"]]}
