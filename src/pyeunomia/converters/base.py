"""What a converter is: a name, its parameters, and the function turning an
option's text into the global's value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

Params = Mapping[str, Any]


class ConverterType(NamedTuple):
    name: str
    params: tuple[str, ...]  # the parameter names it knows
    parse: Callable[[str, Params], Any]  # ValueError("what is wrong: what to do")
    syntax: str  # what it takes, for --help: "a cgroup v2 path"
    check: Callable[[Params], None] = lambda params: None  # ValueError naming a bad parameter


def no_params(params: Params) -> None:
    """The check of a converter that takes no parameter."""
    if params:
        raise ValueError(f"takes no parameters, got {', '.join(sorted(params))}")


def whole_number(text: str) -> int | None:
    """A decimal (or 0x hex) whole number, else None."""
    t = text.strip()
    try:
        return int(t, 0) if t.lower().startswith(("0x", "-0x")) else int(t, 10)
    except ValueError:
        return None
