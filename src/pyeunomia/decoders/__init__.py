"""Value decoders: kernel numbers as the names people read (errno values,
open(2) flags, cgroup ids, ...). One registry serves tool output and the
exporter's labels alike, in the spirit of ebpf_exporter's decoders: one
decoder per module, listed in DECODERS below, no registration at import.

A config names decoders in a label's `decoders:` list, either as a bare name
(`errno`) or as a mapping with parameters (`{name: static_map, map: {...}}`).
Decoders run once per distinct value, never per event. Pure (cgroup reads
only /sys/fs/cgroup).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from .registry import Decode, DecoderType, sibling_params

# Decoder name -> its module, in the order `ecc`'s and the exporter's
# listings show them. A module is imported at the first lookup of one of its
# names, not with the package: importing all 21 took ~16 ms of every tool's
# start-up (python -X importtime) while a tool uses two or three of them.
# tests/decoders/test_table.py checks this table against the modules.
_MODULE_OF: dict[str, str] = {
    "errno": "errno", "result": "result", "open_flags": "open_flags", "cgroup": "cgroup",
    "static_map": "static_map", "signal": "signal", "syscall": "syscall", "tcp_state": "tcp_state",
    "inet": "inet", "port": "port", "duration": "duration", "ktime": "ktime", "bytes": "bytesize",
    "ksym": "ksym", "dev": "dev", "exit_status": "exit_status", "softirq": "softirq", "irq": "irq",
    "uid": "uid", "container": "container", "container_id": "container", "container_image": "container",
    "container_runtime": "container", "pod": "container", "k8s_namespace": "container",
    "k8s_container": "container", "kernel_enum": "kernel_enum", "percent": "percent",
}


class _Table(MutableMapping[str, DecoderType]):
    """The registry: a mapping that loads a decoder's module on first use (a
    module's DECODER, or each of its DECODERS). Mutable for tests, which
    put a counting decoder in place of a real one."""

    def __init__(self) -> None:
        self._names = dict(_MODULE_OF)
        self._loaded: dict[str, DecoderType] = {}

    def __getitem__(self, name: str) -> DecoderType:
        found = self._loaded.get(name)
        if found is None:
            module = importlib.import_module(f"{__name__}.{self._names[name]}")  # KeyError: no such decoder
            for d in getattr(module, "DECODERS", None) or (module.DECODER,):
                self._loaded.setdefault(d.name, d)
            found = self._loaded[name]
        return found

    def __setitem__(self, name: str, decoder: DecoderType) -> None:
        self._names.setdefault(name, "")
        self._loaded[name] = decoder

    def __delitem__(self, name: str) -> None:
        del self._names[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


DECODERS: MutableMapping[str, DecoderType] = _Table()

__all__ = ["DECODERS", "Decode", "DecoderType", "sibling_params"]
