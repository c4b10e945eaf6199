"""`open_flags`: open(2) flags as text, "O_WRONLY|O_CREAT|O_CLOEXEC", and back.

The values come from Python's os module, so they are this machine's (they
differ between architectures: O_DIRECTORY is 0200000 on x86-64, 040000 on arm64).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .registry import Decode, DecoderType

ACCESS_MODES = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}
O_ACCMODE = 3


def _flag_bits() -> list[tuple[str, int]]:
    names = ["O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DSYNC",
             "O_ASYNC", "O_DIRECT", "O_LARGEFILE", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME",
             "O_CLOEXEC", "O_SYNC", "O_PATH", "O_TMPFILE"]
    out = []
    for name in names:
        value = getattr(os, name, None)
        if value:
            out.append((name, value))
    # O_SYNC and O_TMPFILE include another flag's bit: match them first so
    # that O_SYNC is not also shown as O_DSYNC.
    out.sort(key=lambda nv: -bin(nv[1]).count("1"))
    return out


FLAG_BITS = _flag_bits()


@lru_cache(maxsize=1024)
def open_flags_text(flags: int) -> str:
    """'O_WRONLY|O_CREAT|O_TRUNC'; unknown bits are shown in octal."""
    parts = [ACCESS_MODES.get(flags & O_ACCMODE, f"0{flags & O_ACCMODE:o}")]
    rest = flags & ~O_ACCMODE
    named = []
    for name, bits in FLAG_BITS:
        if rest & bits == bits:
            named.append((bits, name))
            rest &= ~bits
    parts += [name for _bits, name in sorted(named)]
    if rest:
        parts.append(f"0{rest:o}")
    return "|".join(parts)


def parse_open_flag(text: str) -> int:
    """One flag by name ('O_CREAT' or 'creat') or number ('0100', '0x40');
    ValueError names what is accepted."""
    t = text.strip()
    name = t.upper() if t.upper().startswith("O_") else "O_" + t.upper()
    for bits, mode in ACCESS_MODES.items():
        if mode == name:
            return bits
    for flag, bits in FLAG_BITS:
        if flag == name:
            return bits
    try:
        return int(t, 8) if t.startswith("0") and not t.startswith(("0x", "0o")) and t != "0" else int(t, 0)
    except ValueError:
        known = ", ".join(list(ACCESS_MODES.values()) + sorted(n for n, _ in FLAG_BITS))
        raise ValueError(f"unknown open flag {text!r}: use one of {known}, or a number") from None


def _make(params: Mapping[str, Any]) -> Decode:
    return open_flags_text


DECODER = DecoderType("open_flags", ("int",), (), _make, "open(2) flags as names joined by '|'")
