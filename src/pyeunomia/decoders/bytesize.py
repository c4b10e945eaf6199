"""`bytes`: a byte count with a binary unit, "512 B", "1.5 KiB", "3.0 GiB"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def bytes_text(value: int) -> str:
    if value < 1024:
        return f"{value} B"
    n = float(value)
    for unit in UNITS[1:]:
        n /= 1024
        if n < 1024 or unit == UNITS[-1]:
            return f"{n:.1f} {unit}"
    return f"{value} B"  # not reached


def _make(params: Mapping[str, Any]) -> Decode:
    return bytes_text


DECODER = DecoderType("bytes", ("int",), (), _make, "a byte count with a binary unit ('1.5 KiB')")
