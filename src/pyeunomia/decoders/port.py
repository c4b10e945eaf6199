"""`port`: a TCP/UDP port as a number in host order; `network: true` when
the member holds it as the kernel's sockets do (`__be16 dport`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType


def swap16(value: int) -> int:
    return ((value & 0xFF) << 8) | ((value >> 8) & 0xFF)


def _same(value: int) -> int:
    return value & 0xFFFF


def _make(params: Mapping[str, Any]) -> Decode:
    network = params.get("network", False)
    if not isinstance(network, bool):
        raise ValueError("network: expected true (stored big-endian) or false")
    return swap16 if network else _same


DECODER = DecoderType("port", ("int",), ("network",), _make,
                      "a port number; 'network': true when stored in network byte order")
