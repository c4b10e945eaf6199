"""Sizes as messages say them. Pure."""

from __future__ import annotations


def size_text(n: int) -> str:
    """n bytes as a message says it: "2 GiB", "64 MiB", "512 KiB"."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"
