"""Label decoders: turn a field's value into the text a label shows, in the
spirit of ebpf_exporter's decoders. One decoder per module; each registers
itself by name with `register`, and `decoder_types()` imports them all.

A config names decoders in a label's `decoders:` list, either as a bare name
(`errno`) or as a mapping with parameters (`{name: static_map, map: {...}}`).
Decoders run once per distinct label set, never per event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Decode = Callable[[Any], Any]
MODULES = ("errno", "result", "open_flags", "cgroup", "static_map")


@dataclass(frozen=True)
class DecoderType:
    name: str
    accepts: tuple[str, ...]  # the value kinds it takes: "int", "str"
    params: tuple[str, ...]  # parameter names it knows
    make: Callable[[Mapping[str, Any]], Decode]  # ValueError names a bad parameter
    help: str


_REGISTRY: dict[str, DecoderType] = {}


def register(name: str, accepts: tuple[str, ...], help: str,
             params: tuple[str, ...] = ()) -> Callable[[Callable[[Mapping[str, Any]], Decode]],
                                                       Callable[[Mapping[str, Any]], Decode]]:
    def add(make: Callable[[Mapping[str, Any]], Decode]) -> Callable[[Mapping[str, Any]], Decode]:
        if name in _REGISTRY:
            raise ValueError(f"label decoder {name!r} registered twice")
        _REGISTRY[name] = DecoderType(name, accepts, params, make, help)
        return make
    return add


def decoder_types() -> dict[str, DecoderType]:
    """Every registered decoder by name."""
    import importlib

    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return dict(_REGISTRY)
