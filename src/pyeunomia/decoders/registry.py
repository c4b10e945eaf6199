"""What a decoder is: a name, the value kinds it takes, its parameters, and
a factory making the function that turns a value into text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

Decode = Callable[[Any], Any]


class DecoderType(NamedTuple):
    name: str
    accepts: tuple[str, ...]  # the value kinds it takes: "int", "str", "bytes" (an array member's raw bytes)
    params: tuple[str, ...]  # parameter names it knows
    make: Callable[[Mapping[str, Any]], Decode]  # ValueError names a bad parameter; reads no files
    help: str
    # Parameters whose value names a sibling member of the same struct (inet's
    # "family"): when given, the decode function takes the tuple (value,
    # sibling values in this order) instead of the value alone. Event columns
    # and the exporter's labels (their first decoder) give them.
    siblings: tuple[str, ...] = ()
    # The decoder reads a file whose content depends on who reads it
    # (/proc/kallsyms shows zeros to the unprivileged), on its first value:
    # the exporter decodes one value while it still runs as root, so the
    # decoder keeps what root saw after the exporter drops its privileges.
    prime_as_root: bool = False


class Provisional(str):
    """A decoder's answer for now, not to be remembered: the thing named is
    not known yet (a container its runtime has not claimed yet). The column
    memo, opensnoop's cells and the exporter's label cache pass it through
    without storing it, so the value is decoded again on its next event."""

    __slots__ = ()


def sibling_params(kind: DecoderType, params: Mapping[str, Any]) -> list[str]:
    """The sibling member names `params` gives, in `kind.siblings` order."""
    return [params[p] for p in kind.siblings if params.get(p) is not None]
