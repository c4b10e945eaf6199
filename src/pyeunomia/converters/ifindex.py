"""`ifindex`: a network interface's name (`lo`, `eth0`) or index as its index."""

from __future__ import annotations

from .base import ConverterType, Params, no_params, whole_number


def parse(text: str, params: Params) -> int:
    number = whole_number(text)
    if number is not None:
        if number <= 0:
            raise ValueError(f"{number} is not an interface index: give a positive index or a name")
        return number
    import socket  # only when a name is given: 2.5 ms of start-up otherwise

    try:
        return socket.if_nametoindex(text)
    except OSError:
        names = ", ".join(n for _, n in socket.if_nameindex())
        raise ValueError(f"no interface is named {text!r}: give one of {names}") from None


CONVERTER = ConverterType("ifindex", (), parse, "an interface name or index", no_params)
