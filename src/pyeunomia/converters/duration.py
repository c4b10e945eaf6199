"""`duration`: `10ms`, `2s`, `500us`, `1.5m`, `100ns`, or a bare number
already in the option's `unit` (params: unit, one of ns, us, ms, s; default
us), as a whole number of that unit (rounded down)."""

from __future__ import annotations

import re

from .base import ConverterType, Params

UNITS_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}
STORED = ("ns", "us", "ms", "s")
_FORM = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|m|h)?\s*")


def check(params: Params) -> None:
    unknown = set(params) - {"unit"}
    if unknown:
        raise ValueError(f"unknown parameter {sorted(unknown)[0]!r}: duration takes 'unit'")
    if params.get("unit", "us") not in STORED:
        raise ValueError(f"unit must be one of {', '.join(STORED)}, not {params.get('unit')!r}")


def parse(text: str, params: Params) -> int:
    unit = params.get("unit", "us")
    from fractions import Fraction  # 2 ms of start-up for every package that converts otherwise

    m = _FORM.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a duration: give a number with a unit (10ms, 2s, 500us) or a "
                         f"number of {unit}")
    suffix = (m.group(2) or unit).replace("µs", "us")
    return int(Fraction(m.group(1)) * UNITS_NS[suffix] // UNITS_NS[unit])


CONVERTER = ConverterType("duration", ("unit",), parse, "a duration: 10ms, 2s, 500us, or a number", check)
