"""Plain slotted records that compare and print by value.

dataclasses would do, but importing it loads inspect and every decorated
class costs ~0.4 ms to create: on the start-up path, ~15 ms together.
Immutable records are typing.NamedTuple; this base is for the few that are
filled in place, or that have a field named like a tuple method (index).
"""

from __future__ import annotations

from typing import Any


class Record:
    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__: Any = None  # records are mutable: like a non-frozen dataclass, unhashable

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({args})"


class FrozenRecord(Record):
    """A Record whose attributes are set once, by `_set` in __init__: shared
    (cached) records must not be changed by one of their users."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: cannot set {name}")

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)
