"""Stack ids to addresses, through a program's BPF_MAP_TYPE_STACK_TRACE map
(bpf_get_stackid()'s, as libbpf-tools' profile and offcputime keep them).

A stack id is the bucket of its stack in the map: without
BPF_F_REUSE_STACKID the kernel never overwrites a bucket (a colliding stack
gets -EEXIST), so an id keeps meaning the same addresses and is looked up
once (a bounded cache): a repeated stack costs no syscall. A program that
passes BPF_F_REUSE_STACKID can reuse an id for another stack; its few
reused ids may then print the first stack seen under them.
"""

from __future__ import annotations

import struct

from ..format.objspec import MAP_TYPE_NAMES
from ..kernel.libbpf import map_lookup
from .loader import MapInfo

MAP_STACK_TRACE = next(k for k, v in MAP_TYPE_NAMES.items() if v == "stack_trace")
CACHE = 1 << 14


class StackMap:
    def __init__(self, info: MapInfo):
        self.fd = info.fd
        self.value_size = info.value_size
        self._unpack = struct.Struct(f"={info.value_size // 8}Q").unpack
        self._cache: dict[int, tuple[int, ...]] = {}

    def addresses(self, stack_id: int) -> tuple[int, ...]:
        """The stack's addresses, innermost first; empty when the id is unknown."""
        found = self._cache.get(stack_id)
        if found is None:
            raw = map_lookup(self.fd, struct.pack("=I", stack_id & 0xFFFFFFFF), self.value_size)
            if raw is None:
                return ()
            values = self._unpack(raw)
            try:
                values = values[: values.index(0)]
            except ValueError:
                pass
            if len(self._cache) >= CACHE:
                self._cache.clear()
            found = self._cache[stack_id] = values
        return found


def stack_map(maps: list[MapInfo]) -> StackMap | None:
    """The program's stack trace map (the first, if it has several)."""
    for m in maps:
        if m.type == MAP_STACK_TRACE:
            return StackMap(m)
    return None
