"""`tcp_state`: a TCP state number (include/net/tcp_states.h) as its name,
"ESTABLISHED", as libbpf-tools' tcpstates prints it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

STATES = ("0", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
          "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE")


def tcp_state_name(state: int) -> str:
    return STATES[state] if 0 < state < len(STATES) else str(state)


def _make(params: Mapping[str, Any]) -> Decode:
    return tcp_state_name


DECODER = DecoderType("tcp_state", ("int",), (), _make, "a TCP state number as its name ('ESTABLISHED')")
