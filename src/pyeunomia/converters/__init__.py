"""Option converters: an option's text as the value its global holds (a
cgroup path as its id, `10ms` as microseconds, `TERM` as 15, ...). One
converter per module, listed in CONVERTERS; a package names one in a
global's `@cmdarg {"convert": NAME}` or `{"convert": {"name": NAME, params}}`.
Imported only when a package's option converts (ecli's start-up stays lean).
"""

from __future__ import annotations

from typing import Any

from ..format.options import Converter
from . import byte_size, cgroup, disk, duration, errno, flags, ifindex, signal, syscall, uid
from .base import ConverterType, Params

CONVERTERS: dict[str, ConverterType] = {c.name: c for c in (
    cgroup.CONVERTER, duration.CONVERTER, byte_size.CONVERTER, ifindex.CONVERTER, signal.CONVERTER,
    syscall.CONVERTER, errno.CONVERTER, uid.CONVERTER, flags.CONVERTER, disk.CONVERTER,
)}


def converter_of(spec: Any) -> tuple[ConverterType, dict[str, Any]]:
    """A `convert` value (a name, or {"name": ..., params}) as (converter,
    params), checked; ValueError says what is wrong."""
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
        name, params = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        raise ValueError('convert must be a converter name or {"name": NAME, ...params}')
    found = CONVERTERS.get(name)
    if found is None:
        raise ValueError(f"unknown converter {name!r}: use one of {', '.join(CONVERTERS)}")
    try:
        found.check(params)
    except ValueError as e:
        raise ValueError(f"converter {name!r}: {e}") from None
    return found, params


def for_option(spec: Any) -> Converter:
    """A `convert` value as the option's Converter (format/options.py)."""
    found, params = converter_of(spec)
    return Converter(found.name, lambda text: found.parse(text, params), found.syntax)


__all__ = ["CONVERTERS", "ConverterType", "Params", "converter_of", "for_option"]
