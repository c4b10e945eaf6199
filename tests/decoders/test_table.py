"""The decoder registry loads a module only when one of its decoders is
looked up, and names exactly what the modules define."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pyeunomia.decoders as decoders
from pyeunomia.decoders import DECODERS
from pyeunomia.decoders.registry import DecoderType


def _defined() -> dict[str, DecoderType]:
    """Every decoder the package's modules define, imported eagerly."""
    out: dict[str, DecoderType] = {}
    for info in pkgutil.iter_modules(decoders.__path__):
        module = importlib.import_module(f"pyeunomia.decoders.{info.name}")
        for d in getattr(module, "DECODERS", None) or ((module.DECODER,) if hasattr(module, "DECODER") else ()):
            out[d.name] = d
    return out


def test_the_table_names_every_decoder_the_modules_define() -> None:
    defined = _defined()
    assert sorted(DECODERS) == sorted(defined)
    assert len(DECODERS) == len(defined)
    for name, d in defined.items():
        assert DECODERS[name] is d, name


def test_an_unknown_name_is_a_key_error() -> None:
    assert "nope" not in DECODERS
    assert DECODERS.get("nope") is None


def test_a_lookup_imports_only_its_own_module() -> None:
    code = ("import sys; from pyeunomia.decoders import DECODERS; DECODERS['errno']; "
            "print(sorted(m for m in sys.modules if m.startswith('pyeunomia.decoders.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["pyeunomia.decoders.errno", "pyeunomia.decoders.registry"]
