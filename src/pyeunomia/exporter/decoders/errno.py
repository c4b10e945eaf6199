"""`errno`: an errno value (2 or -2) as its name, "ENOENT"; 0 as "ok"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...decoders.errno_name import errno_name
from . import Decode, register


def errno_label(value: int) -> str:
    return "ok" if value == 0 else errno_name(value)


@register("errno", accepts=("int",), help="an errno value (positive or negated) as its name; 0 as 'ok'")
def make(params: Mapping[str, Any]) -> Decode:
    return errno_label
