"""errno numbers as their names: 2 -> "ENOENT"."""

from __future__ import annotations

import errno


def errno_name(number: int) -> str:
    """The symbolic name of an errno value (positive or negated), else the number."""
    n = -number if number < 0 else number
    return errno.errorcode.get(n, str(n))
