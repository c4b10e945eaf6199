"""`inet`: an IP address as text, "127.0.0.1" or "::1".

The value is a u32 (an IPv4 address as the kernel stores it, network byte
order in memory) or an array member's raw bytes: 4 bytes IPv4, 16 bytes
IPv6 (an IPv4 address in the first 4 of 16 bytes when the family says so,
as libbpf-tools' tcpconnect stores both in one union). `family` names the
sibling member holding AF_INET (2) or AF_INET6 (10); without it the size
decides."""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

AF_INET, AF_INET6 = int(socket.AF_INET), int(socket.AF_INET6)


def _bytes_of(value: Any) -> bytes:
    if isinstance(value, int):
        return (value & 0xFFFFFFFF).to_bytes(4, sys.byteorder)  # stored in network order, read natively
    if isinstance(value, list):
        return bytes(v & 0xFF for v in value)
    return bytes(value)


def inet_text(value: Any, family: int | None = None) -> str:
    raw = _bytes_of(value)
    if family == AF_INET or (family is None and len(raw) == 4):
        if len(raw) < 4:
            return raw.hex()
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if len(raw) == 16 and family in (None, AF_INET6):
        return socket.inet_ntop(socket.AF_INET6, raw)
    return raw.hex()


def _make(params: Mapping[str, Any]) -> Decode:
    family = params.get("family")
    if family is not None and (not isinstance(family, str) or not family):
        raise ValueError("family: expected the name of the member holding the address family")
    if family is None:
        return inet_text

    def decode(pair: tuple[Any, int]) -> str:
        return inet_text(pair[0], pair[1])
    return decode


DECODER = DecoderType("inet", ("int", "bytes"), ("family",), _make,
                      "an IPv4 or IPv6 address as text; 'family' names the member holding AF_INET/AF_INET6",
                      siblings=("family",))
