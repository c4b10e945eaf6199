"""`syscall`: a system call number of this machine's architecture as its
name ("openat"); the table is format/syscalls.py, shared with the
`syscall` converter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..format.syscalls import table
from .registry import Decode, DecoderType


def _make(params: Mapping[str, Any]) -> Decode:
    machine = params.get("arch")
    if machine is not None and not isinstance(machine, str):
        raise ValueError("arch: expected a machine name such as x86_64 or aarch64")
    names = table(machine)

    def decode(number: int) -> str:
        return names.get(number) or str(number)
    return decode


DECODER = DecoderType("syscall", ("int",), ("arch",), _make,
                      "a system call number (this architecture's, or 'arch') as its name")
