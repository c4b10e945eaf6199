"""`syscall`: a syscall's name (`openat`) or number as its number on this
architecture (the table in format/syscalls.py, shared with the decoder)."""

from __future__ import annotations

from ..format.syscalls import syscall_number, table
from .base import ConverterType, Params, no_params, whole_number


def parse(text: str, params: Params) -> int:
    number = whole_number(text)
    if number is not None:
        if number < 0:
            raise ValueError(f"{number} is not a syscall number: give a name or a number from 0")
        return number
    if not table():
        raise ValueError(f"syscall names are not known on this architecture: give {text!r}'s number")
    try:
        return syscall_number(text.strip().lower())
    except ValueError:
        raise ValueError(f"{text!r} is not a syscall on this architecture: give a name such as openat, "
                         "or a number") from None


CONVERTER = ConverterType("syscall", (), parse, "a syscall name or number", no_params)
