"""`static_map`: look the value up in a table from the config,
`{name: static_map, map: {1: tcp, 2: udp}, default: other}`; without a
default, an unmapped value is shown as itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType


def _make(params: Mapping[str, Any]) -> Decode:
    table = params.get("map")
    if not isinstance(table, dict) or not table:
        raise ValueError("map: expected a mapping of values to label text, e.g. {1: tcp, 2: udp}")
    for key, text in table.items():
        if not isinstance(text, str | int) or isinstance(text, bool):
            raise ValueError(f"map: the text for {key!r} must be a string")
    lookup = {str(k): str(v) for k, v in table.items()}
    default = params.get("default")
    if default is not None and not isinstance(default, str):
        raise ValueError("default: expected a string")

    def decode(value: Any) -> Any:
        found = lookup.get(str(value))
        if found is not None:
            return found
        return value if default is None else default
    return decode


DECODER = DecoderType("static_map", ("int", "str"), ("map", "default"), _make,
                      "values looked up in a table given as 'map'")
