"""`flags`: a comma list of names (`O_CREAT,O_TRUNC`), each a bit value in the
param `names` ({"O_CREAT": 64, ...}), OR-ed; a number is taken as it is.
Names match without regard to case."""

from __future__ import annotations

from .base import ConverterType, Params, whole_number


def check(params: Params) -> None:
    unknown = set(params) - {"names"}
    if unknown:
        raise ValueError(f"unknown parameter {sorted(unknown)[0]!r}: flags takes 'names'")
    names = params.get("names")
    if not isinstance(names, dict) or not names:
        raise ValueError('flags needs "names": an object of name -> bit value, such as {"O_CREAT": 64}')
    for name, value in names.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"names: {name!r} must be a whole number from 0")


def parse(text: str, params: Params) -> int:
    check(params)
    names = {str(k).upper(): int(v) for k, v in params["names"].items()}
    out = 0
    for part in text.split(","):
        number = whole_number(part)
        if number is not None and number >= 0:
            out |= number
        elif part.strip().upper() in names:
            out |= names[part.strip().upper()]
        else:
            raise ValueError(f"{part.strip()!r} is not one of the flags: give names from "
                             f"{', '.join(params['names'])} separated by commas")
    return out


CONVERTER = ConverterType("flags", ("names",), parse, "names separated by commas", check)
