"""`signal`: a signal number as its name, "SIGTERM"; real-time signals as
"SIGRTMIN+3"; 0 and unknown numbers as the number."""

from __future__ import annotations

import signal as signal_module
from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

NAMES = {int(s): s.name for s in signal_module.Signals if not s.name.startswith("SIGRT")}
RTMIN, RTMAX = int(signal_module.SIGRTMIN), int(signal_module.SIGRTMAX)


def signal_name(number: int) -> str:
    found = NAMES.get(number)
    if found is not None:
        return found
    if RTMIN <= number <= RTMAX:
        return "SIGRTMIN" if number == RTMIN else f"SIGRTMIN+{number - RTMIN}"
    return str(number)


def _make(params: Mapping[str, Any]) -> Decode:
    return signal_name


DECODER = DecoderType("signal", ("int",), (), _make, "a signal number as its name ('SIGTERM')")
