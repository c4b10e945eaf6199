"""pyeunomia: compile, run and export eBPF programs from Python.

    from pyeunomia import open_package, Program
    with Program(open_package("opensnoop")) as prog:
        for event in prog.events(duration=5):
            print(event)
        print_events(prog, duration=5)  # or as ecli prints them

Heavy modules load on first use, so `import pyeunomia` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import print_events
    from .format.package import Package
    from .runner.program import Program
    from .source import open_package

__all__ = ["Package", "Program", "__version__", "open_package", "print_events"]

_LAZY = {
    "Package": ("pyeunomia.format.package", "Package"),
    "Program": ("pyeunomia.runner.program", "Program"),
    "open_package": ("pyeunomia.source", "open_package"),
    "print_events": ("pyeunomia.api", "print_events"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'pyeunomia' has no attribute {name!r}")
