"""`irq`: an interrupt number as the name /proc/interrupts gives it (its
last column: "virtio0-input.0", "i8042"). The file is read on the first
number decoded and again (at most once a second) for a number it lacked:
a device may register its interrupt after the run started. A number it
still lacks shows as itself."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

REREAD_S = 1.0


def parse_interrupts(text: str) -> dict[int, str]:
    """`  24:  1234  0  PCI-MSI 49152-edge  virtio0-input.0` -> {24: 'virtio0-input.0'}.
    The name is the last field; lines of named interrupts (NMI:, LOC:) are skipped."""
    lines = text.splitlines()
    cpus = len(lines[0].split()) if lines else 0
    out = {}
    for line in lines[1:]:
        head, sep, rest = line.partition(":")
        if not sep or not head.strip().isdigit():
            continue
        fields = rest.split()
        if len(fields) > cpus:
            out[int(head)] = fields[-1]
    return out


def _make(params: Mapping[str, Any]) -> Decode:
    path = params.get("interrupts", "/proc/interrupts")
    if not isinstance(path, str):
        raise ValueError("interrupts: expected a path")
    names: dict[int, str] = {}
    read_at = [-REREAD_S]

    def decode(number: int) -> str:
        found = names.get(number)
        if found is None and time.monotonic() - read_at[0] >= REREAD_S:
            read_at[0] = time.monotonic()
            try:
                with open(path) as f:
                    names.update(parse_interrupts(f.read()))
            except OSError:
                pass
            found = names.get(number)
        return found if found is not None else str(number)
    return decode


DECODER = DecoderType("irq", ("int",), ("interrupts",), _make,
                      "an interrupt number as its name in /proc/interrupts")
