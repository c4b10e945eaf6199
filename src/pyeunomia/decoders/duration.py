"""`duration`: a time span stored in `unit` (ns, us, ms, s; default ns) shown
in `show` (default ms) with `digits` decimals (default 3), as libbpf-tools
print latencies ("LAT(ms)": 1.234)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def _unit(params: Mapping[str, Any], key: str, default: str) -> int:
    unit = params.get(key, default)
    if unit not in NS_PER:
        raise ValueError(f"{key}: expected one of {', '.join(NS_PER)}, not {unit!r}")
    return NS_PER[unit]


def _make(params: Mapping[str, Any]) -> Decode:
    stored, shown = _unit(params, "unit", "ns"), _unit(params, "show", "ms")
    digits = params.get("digits", 3)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 9:
        raise ValueError("digits: expected a whole number from 0 to 9")
    fmt = f"%.{digits}f"
    scale = stored / shown

    def decode(value: int) -> str:
        return fmt % (value * scale)
    return decode


DECODER = DecoderType("duration", ("int",), ("unit", "show", "digits"), _make,
                      "a duration stored in 'unit' shown in 'show' (ns, us, ms, s)")
