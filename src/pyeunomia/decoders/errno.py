"""`errno`: an errno value (2 or -2) as its name, "ENOENT"; 0 as "ok" (a label)."""

from __future__ import annotations

import errno as errno_module
from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType


def errno_name(number: int) -> str:
    """The symbolic name of an errno value (positive or negated), else the number."""
    n = -number if number < 0 else number
    return errno_module.errorcode.get(n, str(n))


def errno_label(value: int) -> str:
    return "ok" if value == 0 else errno_name(value)


def _make(params: Mapping[str, Any]) -> Decode:
    return errno_label


DECODER = DecoderType("errno", ("int",), (), _make, "an errno value (positive or negated) as its name; 0 as 'ok'")
