"""`open_flags`: open(2) flags as text, "O_WRONLY|O_CREAT|O_TRUNC"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...decoders.open_flags import open_flags_text
from . import Decode, register


@register("open_flags", accepts=("int",), help="open(2) flags as names joined by '|'")
def make(params: Mapping[str, Any]) -> Decode:
    return open_flags_text
