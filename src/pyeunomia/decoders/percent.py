"""`percent`: a count as a share of a sibling member, "12.34%" (runqlen -O:
the samples that found a task waiting, of all samples)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType


def _make(params: Mapping[str, Any]) -> Decode:
    if not isinstance(params.get("of"), str):
        raise ValueError("percent needs 'of': the member holding the whole")
    digits = params.get("digits", 2)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 9:
        raise ValueError("percent 'digits' must be a whole number from 0 to 9")

    def decode(pair: Any) -> str:
        if not isinstance(pair, tuple) or len(pair) != 2 or not all(isinstance(v, int) for v in pair):
            return str(pair)  # without its sibling (a package whose member is gone): as it is
        part, whole = pair
        return f"{100 * part / whole:.{digits}f}%" if whole else f"{0:.{digits}f}%"
    return decode


DECODER = DecoderType("percent", ("int",), ("of", "digits"), _make,
                      "a count as a percentage of the sibling member 'of' ('12.34%')", siblings=("of",))
