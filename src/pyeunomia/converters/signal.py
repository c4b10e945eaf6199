"""`signal`: `SIGTERM`, `TERM`, `term` or `15` as the signal's number."""

from __future__ import annotations

import signal as signal_module

from .base import ConverterType, Params, no_params, whole_number


def parse(text: str, params: Params) -> int:
    number = whole_number(text)
    if number is not None:
        if not 0 <= number <= signal_module.SIGRTMAX:
            raise ValueError(f"{number} is not a signal number: give 0 to {int(signal_module.SIGRTMAX)} or a name")
        return number
    name = text.strip().upper()
    name = name if name.startswith("SIG") else "SIG" + name
    found = getattr(signal_module.Signals, name, None) if name.isidentifier() else None
    if not isinstance(found, signal_module.Signals):
        raise ValueError(f"{text!r} is not a signal: give a name (TERM, SIGKILL) or a number")
    return int(found)


CONVERTER = ConverterType("signal", (), parse, "a signal: TERM, SIGKILL, 9", no_params)
