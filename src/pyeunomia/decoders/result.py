"""`result`: a system call's return value as its outcome: "ok" for 0 or more
(a file descriptor, a count), else the name of the errno it negates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errno import errno_name
from .registry import Decode, DecoderType


def result_label(value: int) -> str:
    return "ok" if value >= 0 else errno_name(value)


def _make(params: Mapping[str, Any]) -> Decode:
    return result_label


DECODER = DecoderType("result", ("int",), (), _make,
                      "a return value: 'ok' when >= 0, else the errno name ('ENOENT')")
