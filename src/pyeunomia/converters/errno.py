"""`errno`: `ENOENT` (or `-ENOENT`, `2`, `-2`) as the errno number (positive)."""

from __future__ import annotations

import errno as errno_module

from .base import ConverterType, Params, no_params, whole_number


def parse(text: str, params: Params) -> int:
    number = whole_number(text)
    if number is not None:
        return abs(number)
    name = text.strip().lstrip("-").upper()
    found = getattr(errno_module, name, None) if name.startswith("E") and name.isidentifier() else None
    if not isinstance(found, int):
        raise ValueError(f"{text!r} is not an errno name: give one such as ENOENT, or a number")
    return found


CONVERTER = ConverterType("errno", (), parse, "an errno: ENOENT, 2", no_params)
