"""README's catalogue table is what scripts/catalogue_table.py writes from the
shipped packages and BENCHMARKS.md: a new tool, option or bench run shows."""

from __future__ import annotations

import subprocess
import sys

from ..conftest import ROOT


def test_readme_catalogue_is_current():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "catalogue_table.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_tool_is_in_the_table():
    readme = (ROOT / "README.md").read_text()
    tools = sorted(p.name for p in (ROOT / "src" / "pyeunomia" / "tools").iterdir() if (p / "package.json").exists())
    assert len(tools) >= 24
    for name in tools:
        assert f"`ecli run {name}`" in readme or f"`{name}`" in readme, name
