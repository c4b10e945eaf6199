"""`result`: a system call's return value as its outcome: "ok" for 0 or more
(a file descriptor, a count), else the name of the errno it negates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...decoders.errno_name import errno_name
from . import Decode, register


def result_label(value: int) -> str:
    return "ok" if value >= 0 else errno_name(value)


@register("result", accepts=("int",), help="a return value: 'ok' when >= 0, else the errno name ('ENOENT')")
def make(params: Mapping[str, Any]) -> Decode:
    return result_label
