"""A small deterministic reader of fuzz input, so targets need no atheris to replay.

Reads past the end give zeros and empty strings: every input, however short,
describes one complete test case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Provider:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def uint(self, nbytes: int = 1) -> int:
        return int.from_bytes(self.take(nbytes).ljust(nbytes, b"\0"), "little")

    def below(self, n: int) -> int:
        """A number in range(n); n > 0."""
        return self.uint(1 if n <= 256 else 4) % n

    def pick(self, choices: Sequence[T]) -> T:
        return choices[self.below(len(choices))]

    def flag(self) -> bool:
        return bool(self.uint() & 1)

    def text(self, max_len: int = 16) -> str:
        """Up to max_len bytes as text (undecodable bytes kept as surrogates)."""
        return self.take(self.below(max_len + 1)).decode("utf-8", "surrogateescape")

    def rest(self) -> bytes:
        return self.take(len(self.data))
