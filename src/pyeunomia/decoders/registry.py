"""What a decoder is: a name, the value kinds it takes, its parameters, and
a factory making the function that turns a value into text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

Decode = Callable[[Any], Any]


class DecoderType(NamedTuple):
    name: str
    accepts: tuple[str, ...]  # the value kinds it takes: "int", "str"
    params: tuple[str, ...]  # parameter names it knows
    make: Callable[[Mapping[str, Any]], Decode]  # ValueError names a bad parameter
    help: str
