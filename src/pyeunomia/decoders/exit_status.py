"""`exit_status`: a wait(2) status as people read it: "0", "code 1",
"signal 9 (SIGKILL)", "signal 11 (SIGSEGV), core". The kernel's
task->exit_code is such a status (exit code << 8, or the signal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType
from .signal import signal_name


def exit_status_text(status: int) -> str:
    status &= 0xFFFFFFFF
    sig = status & 0x7F
    if sig == 0:
        code = (status >> 8) & 0xFF
        return "0" if code == 0 else f"code {code}"
    if sig == 0x7F:
        return f"stopped by {signal_name((status >> 8) & 0xFF)}"
    core = ", core" if status & 0x80 else ""
    return f"signal {sig} ({signal_name(sig)}){core}"


def _make(params: Mapping[str, Any]) -> Decode:
    return exit_status_text


DECODER = DecoderType("exit_status", ("int",), (), _make,
                      "a wait status as '0', 'code 1' or 'signal 9 (SIGKILL)'")
