"""`bytes`: `4K`, `1M`, `2G`, `512`, `16KiB` as a number of bytes (K, M, G,
T: powers of 1024, as dd and libbpf-tools' -b take them)."""

from __future__ import annotations

import re

from .base import ConverterType, Params, no_params

_FORM = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(?:i?b)?|b)?\s*", re.I)


def parse(text: str, params: Params) -> int:
    from fractions import Fraction  # 2 ms of start-up for every package that converts otherwise

    m = _FORM.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a size: give bytes, or a number with K, M, G (4K, 1M)")
    power = " kmgt".index(m.group(2).lower()) if m.group(2) else 0
    return int(Fraction(m.group(1)) * (1 << (10 * power)))


CONVERTER = ConverterType("bytes", (), parse, "a size: 512, 4K, 1M", no_params)
